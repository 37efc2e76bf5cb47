package server

import (
	"errors"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/hotlane/hotlane/feedback"
	"github.com/hotlane/hotlane/model"
)

// Values a client can send that every database must store the same way.
// PostgreSQL refuses invalid UTF-8 and NUL in text where SQLite keeps them,
// and Go cannot encode times outside years 0-9999 as JSON, so such values
// are refused at the edge with a 4xx instead of failing inside a write or,
// worse, being stored and breaking every later read.

// withSaneParams refuses path parameters and query values that are not
// valid UTF-8 or hold control characters.
func withSaneParams() gin.HandlerFunc {
	return func(c *gin.Context) {
		for _, p := range c.Params {
			if !model.PlainText(p.Value) {
				abortInvalid(c, p.Key)
				return
			}
		}
		for k, vs := range c.Request.URL.Query() {
			for _, v := range vs {
				if !model.PlainText(k) || !model.PlainText(v) {
					abortInvalid(c, k)
					return
				}
			}
		}
		c.Next()
	}
}

func abortInvalid(c *gin.Context, field string) {
	if !utf8.ValidString(field) {
		field = ""
	}
	c.AbortWithStatusJSON(http.StatusBadRequest, gin.H{"error": invalidField(field,
		"must be valid UTF-8 without control characters")})
}

// maxFuture is how far ahead of the server's clock a reported time may be:
// clocks drift, but an event a day ahead is a bug in the sender.
const maxFuture = feedback.MaxAhead

// earliest is the earliest time accepted for an event or a decision.
var earliest = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// parseEventTime parses an RFC 3339 timestamp and bounds it to a sane
// window, so nothing stored is unreadable later. badSyntax is the status of
// a value that is not a timestamp at all (the score endpoint answers 400,
// the events endpoint 422).
func parseEventTime(field, v string, now time.Time, badSyntax int) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, &APIError{Status: badSyntax, Code: "invalid_field", Field: field,
			Message: "must be an RFC 3339 timestamp such as 2026-11-25T10:00:00Z"}
	}
	t = t.UTC()
	if t.Before(earliest) || t.After(now.Add(maxFuture)) {
		return time.Time{}, &APIError{Status: http.StatusUnprocessableEntity, Code: "invalid_field", Field: field,
			Message: fmt.Sprintf("must be between %s and a day from now", earliest.Format("2006-01-02"))}
	}
	return t, nil
}

// sqlStater and sqliteCoder match driver errors without importing the
// drivers: a value the database refused must not echo the database's
// own message to the client.
type (
	sqlStater   interface{ SQLState() string }
	sqliteCoder interface{ Code() int }
)

// fromDatabase reports whether err carries a database driver's error.
func fromDatabase(err error) bool {
	var a sqlStater
	var b sqliteCoder
	return errors.As(err, &a) || errors.As(err, &b)
}
