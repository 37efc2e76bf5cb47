package jobs

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Headers of a webhook delivery.
const (
	// SignatureHeader carries "t=<unix seconds>,v1=<hex>" with one v1 per
	// active secret.
	SignatureHeader = "Hotlane-Signature"
	// DeliveryHeader carries the delivery id, the same on every retry, so
	// receivers can drop duplicates.
	DeliveryHeader = "Hotlane-Delivery"
)

// Sign returns the hex HMAC-SHA256 of "<unix t>.<body>" under secret.
func Sign(secret string, t time.Time, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(t.Unix(), 10)))
	mac.Write([]byte("."))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// SignatureValue builds the Hotlane-Signature value of body sent at t:
// "t=<unix>,v1=<sig>" with one v1 per secret, in order.
func SignatureValue(secrets []string, t time.Time, body []byte) string {
	var b strings.Builder
	b.WriteString("t=")
	b.WriteString(strconv.FormatInt(t.Unix(), 10))
	for _, s := range secrets {
		b.WriteString(",v1=")
		b.WriteString(Sign(s, t, body))
	}
	return b.String()
}

// Errors of VerifySignature.
var (
	ErrSignatureFormat   = errors.New("malformed Hotlane-Signature header")
	ErrSignatureExpired  = errors.New("Hotlane-Signature timestamp outside the tolerance")
	ErrSignatureMismatch = errors.New("no Hotlane-Signature v1 matches the secret")
)

// VerifySignature checks a Hotlane-Signature header value against body, as
// a receiver should: the timestamp must be within tolerance of now (which
// stops replays) and one v1 signature must match secret, compared in
// constant time. A zero tolerance skips the timestamp check.
func VerifySignature(header string, body []byte, secret string, now time.Time, tolerance time.Duration) error {
	var ts int64
	var haveTS bool
	var sigs []string
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrSignatureFormat
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || haveTS {
				return ErrSignatureFormat
			}
			ts, haveTS = n, true
		case "v1":
			sigs = append(sigs, v)
		}
	}
	if !haveTS || len(sigs) == 0 {
		return ErrSignatureFormat
	}
	t := time.Unix(ts, 0)
	if tolerance > 0 && (now.Sub(t) > tolerance || t.Sub(now) > tolerance) {
		return ErrSignatureExpired
	}
	want := []byte(Sign(secret, t, body))
	for _, s := range sigs {
		if hmac.Equal([]byte(s), want) {
			return nil
		}
	}
	return ErrSignatureMismatch
}
