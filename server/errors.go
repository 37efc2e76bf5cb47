package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// APIError is the one error shape every endpoint answers with:
// {"error": {"code": "...", "message": "...", "field": "..."}}. Handlers
// build one for anything the client got wrong; everything else goes through
// writeError, which maps error kinds to statuses in one place.
type APIError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	// Problems lists every problem of a refused policy document.
	Problems []model.Problem `json:"problems,omitempty"`
}

// Error implements error.
func (e *APIError) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// errUnavailable marks a failure of the database behind a request that was
// itself fine: the client may retry it.
var errUnavailable = errors.New("database unavailable")

func badRequest(field, format string) *APIError {
	return &APIError{Status: http.StatusBadRequest, Code: "invalid_request", Message: format, Field: field}
}

func invalidField(field, message string) *APIError {
	return &APIError{Status: http.StatusBadRequest, Code: "invalid_field", Message: message, Field: field}
}

// writeError maps an error to its HTTP status and JSON body and aborts the
// request. Client mistakes carry their own status; store error kinds map to
// 404 and 409; a dead database is a 503; anything else is a 500 whose
// message stays generic and whose cause is logged once, here.
func writeError(c *gin.Context, log *slog.Logger, err error) {
	var apiErr *APIError
	var polErr *model.PolicyError
	switch {
	case errors.As(err, &apiErr):
	case errors.As(err, &polErr):
		apiErr = &APIError{Status: http.StatusUnprocessableEntity, Code: "invalid_policy",
			Message: polErr.Error(), Problems: polErr.Problems}
		if len(polErr.Problems) > 0 {
			apiErr.Field = polErr.Problems[0].Field
		}
	case errors.Is(err, feedback.ErrNotFound):
		apiErr = &APIError{Status: http.StatusNotFound, Code: "not_found", Message: "not found"}
	case errors.Is(err, feedback.ErrConflict):
		apiErr = &APIError{Status: http.StatusConflict, Code: "conflict", Message: "conflicts with the current state"}
		if why := feedback.Reason(err); why != "" {
			apiErr.Message = why
		}
	case errors.Is(err, feedback.ErrInvalid):
		msg := err.Error()
		if fromDatabase(err) {
			log.Warn("database refused a value", slog.String("request_id", requestID(c)), slog.String("path", c.FullPath()), slog.Any("err", err))
			msg = "the database refused a value of this request"
		}
		apiErr = &APIError{Status: http.StatusUnprocessableEntity, Code: "invalid", Message: msg}
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this answer.
		apiErr = &APIError{Status: 499, Code: "canceled", Message: "request canceled"}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, errUnavailable), errors.Is(err, feedback.ErrUnavailable):
		c.Header("Retry-After", "1")
		log.Error("request failed", slog.String("request_id", requestID(c)), slog.String("path", c.FullPath()), slog.Any("err", err))
		apiErr = &APIError{Status: http.StatusServiceUnavailable, Code: "unavailable",
			Message: "the database is not answering; retry later"}
	default:
		log.Error("request failed", slog.String("request_id", requestID(c)), slog.String("path", c.FullPath()), slog.Any("err", err))
		apiErr = &APIError{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
	}
	c.AbortWithStatusJSON(apiErr.Status, gin.H{"error": apiErr})
}
