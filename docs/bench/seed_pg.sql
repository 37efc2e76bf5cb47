-- A grown history for benchmarks: :conversations conversations of 2-6
-- decisions each (4 on average) over the last :days days, outcomes on 65 %
-- of them, tier alerts, review samples, agents' labels and tier feedback.
-- The defaults, 2,500,000 over 84 days, store 10,000,000 decisions over the
-- tuning job's 12-week window; BENCHMARKS.md's 1M-decision history is
-- -v conversations=250000 -v days=27. It dates the history from now(), so
-- what measures it must follow within the day. Run it on a migrated
-- database:
--
--   psql -h 127.0.0.1 -U postgres -d DB -v ON_ERROR_STOP=1 -f docs/bench/seed_pg.sql
--
-- Decisions are recorded 3 ms after they occur (created_at), so on
-- PostgreSQL they fill the monthly partitions of the whole period.
\if :{?conversations}
\else
\set conversations 2500000
\endif
\if :{?days}
\else
\set days 84
\endif
SELECT setseed(0.12);
CREATE TEMP TABLE gconv AS
SELECT c, 'conv_' || substr(md5('conv' || c), 1, 20) AS id,
       CASE WHEN random() < 0.3 THEN 'whatsapp' ELSE 'web' END AS channel,
       2 + (c * 7919 % 5) AS n, c % 3 AS ppv_step,
       now() - interval '1 hour' - make_interval(secs => c * :days * 86400.0 / :conversations) AS start,
       round(exp(4 + random() * 7)) AS deal,
       (ARRAY['free','free','free','pro','pro','team','enterprise'])[1 + floor(random() * 7)::int] AS plan,
       (ARRAY['lead','lead','lead','opportunity','opportunity','customer','churned'])[1 + floor(random() * 7)::int] AS stage,
       floor(random() * 3)::int AS ppv0, random() < 0.4 AS is_returning,
       floor(exp(random() * 8))::int AS company_size,
       (ARRAY['US','GB','DE','FR','CA','BR','IN','ES','NL','JP'])[1 + floor(random() * 10)::int] AS country,
       (ARRAY['organic','organic','google-ads','linkedin','partner','newsletter','direct'])[1 + floor(random() * 7)::int] AS utm,
       1 + floor(random() * 12)::int AS visits, floor(exp(random() * 5))::int AS seats,
       random() AS u1, random() AS u2, random() AS u3, random() AS u4
FROM generate_series(1::bigint, :conversations) c;
CREATE TEMP TABLE gdec AS
SELECT g.*, k, md5('dec' || c || '-' || k)::uuid::text AS did,
       g.start + make_interval(secs => k * 40) AS at,
       g.ppv0 + k * g.ppv_step AS ppv, k * 40 + c * 13 % 60 AS wait, 2 + 2 * k + c % 5 AS pages,
       -3 + CASE WHEN deal >= 10000 AND stage IN ('opportunity','customer') THEN 2.5 ELSE 0 END
          + CASE WHEN deal >= 50000 THEN 2 ELSE 0 END
          + CASE WHEN g.ppv0 + k * g.ppv_step >= 3 THEN 1.5 ELSE 0 END
          + CASE WHEN k * 40 + c * 13 % 60 > 120 THEN 1 ELSE 0 END
          + CASE WHEN plan = 'enterprise' THEN 1.2 ELSE 0 END AS logit
FROM gconv g, generate_series(0, g.n - 1) k;
ALTER TABLE gdec ADD COLUMN tier text;
UPDATE gdec SET tier = CASE WHEN 1 / (1 + exp(-logit)) >= 0.9 THEN 'urgent' WHEN 1 / (1 + exp(-logit)) >= 0.7 THEN 'high'
                            WHEN 1 / (1 + exp(-logit)) >= 0.4 THEN 'medium' ELSE 'low' END;
INSERT INTO decisions (id, conversation_id, channel, signals, score, tier, reasons, route, policy_version, latency_us, occurred_at, created_at)
SELECT did, id, channel,
       jsonb_build_object('deal_size', deal, 'plan', plan, 'lifecycle_stage', stage, 'pricing_page_views', ppv,
                          'returning', is_returning, 'wait_seconds', wait, 'company_size', company_size, 'country', country,
                          'utm_source', utm, 'visits', visits, 'seats', seats, 'pages_viewed', pages),
       1 / (1 + exp(-logit)), tier,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('kind', 'rule', 'name', r, 'contribution', 1)), '[]'::jsonb)
        FROM unnest(ARRAY[CASE WHEN deal >= 10000 AND stage IN ('opportunity','customer') THEN 'big-deal' END,
                          CASE WHEN deal >= 50000 THEN 'enterprise-deal' END,
                          CASE WHEN ppv >= 3 THEN 'pricing-intent' END,
                          CASE WHEN wait > 120 THEN 'long-wait' END]) r WHERE r IS NOT NULL),
       jsonb_build_object('team', 'sales', 'via', 'route'), 1, 150, at, at + interval '3 milliseconds'
FROM gdec;
INSERT INTO conversations (id, channel, tier, score, last_decision_id, decisions, first_seen_at, updated_at, closed_at)
SELECT DISTINCT ON (id) id, channel, tier, 1 / (1 + exp(-logit)), did, n, start, at,
       CASE WHEN u1 < 0.65 THEN at + interval '20 minutes' END
FROM gdec ORDER BY id, k DESC;
-- Outcomes: converted with a known logit in the signals, else lost.
INSERT INTO conversation_events (id, conversation_id, type, at, created_at)
SELECT md5('out' || c)::uuid::text, id,
       CASE WHEN u2 < 1 / (1 + exp(-(-4.2 + 0.35 * ln(deal) + 0.3 * (ppv0 + (n - 1) * ppv_step)
                  + CASE plan WHEN 'enterprise' THEN 1 WHEN 'pro' THEN 0.5 WHEN 'free' THEN -0.7 ELSE 0 END
                  + CASE stage WHEN 'opportunity' THEN 0.8 WHEN 'churned' THEN -1 ELSE 0 END
                  + CASE WHEN utm = 'partner' THEN 0.6 ELSE 0 END)))
            THEN 'converted' ELSE 'lost' END,
       start + make_interval(secs => n * 40) + interval '20 minutes', start + make_interval(secs => n * 40) + interval '20 minutes'
FROM gconv WHERE u1 < 0.65;
-- Agents' tier feedback on 2 %.
INSERT INTO conversation_events (id, conversation_id, type, at, tier, agent, created_at)
SELECT md5('fb' || c)::uuid::text, id, 'tier_feedback', start + interval '10 minutes',
       CASE WHEN u3 < 0.01 THEN 'high' ELSE 'low' END, 'agent' || (c % 40), start + interval '10 minutes'
FROM gconv WHERE u3 < 0.02;
-- A fired tier alert at the first urgent or high decision; a review request
-- for 3 % of the rest.
INSERT INTO alerts (id, kind, conversation_id, decision_id, channel, tier, score, team, status, created_at, dispatched_at)
SELECT DISTINCT ON (id) md5('al' || did)::uuid::text, 'tier', id, did, channel, tier, 1 / (1 + exp(-logit)), 'sales', 'fired', at, at
FROM gdec WHERE tier IN ('urgent', 'high') ORDER BY id, k;
INSERT INTO alerts (id, kind, conversation_id, decision_id, channel, tier, score, team, status, sample_rate, created_at, dispatched_at)
SELECT md5('rv' || c)::uuid::text, 'review', id, md5('dec' || c || '-0')::uuid::text, channel, 'low', 0.1, 'sales', 'fired', 0.03,
       start, start
FROM gconv WHERE u4 < 0.03 AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.conversation_id = gconv.id);
-- Agents label 40 % of the alerts.
INSERT INTO alert_labels (alert_id, agent, conversation_id, label, created_at, updated_at)
SELECT a.id, 'agent' || (g.c % 40), a.conversation_id, CASE WHEN g.u2 < 0.5 THEN 'useful' ELSE 'noise' END,
       a.created_at + interval '5 minutes', a.created_at + interval '5 minutes'
FROM alerts a JOIN gconv g ON g.id = a.conversation_id WHERE g.u4 < 0.4 OR a.kind = 'review';
ANALYZE;
