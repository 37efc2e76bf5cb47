package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// baselineRequest has the shape of a score request; the baseline decodes
// into it so it does the JSON work every real handler must do.
type baselineRequest struct {
	ConversationID string         `json:"conversation_id"`
	Channel        string         `json:"channel"`
	Signals        map[string]any `json:"signals"`
	Message        *string        `json:"message"`
	OccurredAt     *time.Time     `json:"occurred_at"`
}

// baselineResponse is the small answer the baseline sends.
type baselineResponse struct {
	DecisionID     string  `json:"decision_id"`
	ConversationID string  `json:"conversation_id"`
	Tier           string  `json:"tier"`
	Score          float64 `json:"score"`
}

// maxBaselineBody matches the score endpoint's body limit.
const maxBaselineBody = 64 << 10

// baselineServer is a bare Gin server on a loopback port: the upper bound of
// what any handler decoding the same bodies on this machine can do.
type baselineServer struct {
	srv  *http.Server
	url  string
	done chan error
}

// startBaseline listens on 127.0.0.1:0 and serves POST /v1/score until stop.
func startBaseline() (*baselineServer, error) {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.POST("/v1/score", func(c *gin.Context) {
		var req baselineRequest
		body := http.MaxBytesReader(c.Writer, c.Request.Body, maxBaselineBody)
		if err := json.NewDecoder(body).Decode(&req); err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"error": gin.H{"code": "invalid_json", "message": err.Error()}})
			return
		}
		c.JSON(http.StatusOK, baselineResponse{
			DecisionID:     "x",
			ConversationID: req.ConversationID,
			Tier:           "low",
			Score:          0.1,
		})
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start baseline: %w", err)
	}
	b := &baselineServer{
		srv: &http.Server{
			Handler:           r,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
		},
		url:  "http://" + ln.Addr().String(),
		done: make(chan error, 1),
	}
	go func() {
		err := b.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		b.done <- err
	}()
	return b, nil
}

// stop shuts the server down, waiting briefly for in-flight requests.
func (b *baselineServer) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := b.srv.Shutdown(ctx)
	if err != nil {
		_ = b.srv.Close()
	}
	if serveErr := <-b.done; serveErr != nil && err == nil {
		err = serveErr
	}
	if err != nil {
		return fmt.Errorf("stop baseline: %w", err)
	}
	return nil
}
