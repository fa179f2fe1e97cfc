package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/dynogrid/grid/internal/grid"
)

// decode reads a JSON request body into v. An empty body leaves v as it
// is, since several endpoints take an optional body.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	err := dec.Decode(v)
	if err == nil {
		if dec.Decode(&struct{}{}) != io.EOF {
			err = errors.New("unexpected data after the JSON value")
		}
	}
	var tooBig *http.MaxBytesError
	switch {
	case err == nil, errors.Is(err, io.EOF):
		return nil
	case errors.As(err, &tooBig):
		return fmt.Errorf("request body is larger than %d bytes: %w", tooBig.Limit, grid.ErrTooLarge)
	}
	return &userError{msg: "Invalid JSON in request body: " + err.Error(), err: errBadRequest}
}
