package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/schema"
	"github.com/dynogrid/grid/internal/store"
)

// Source uploads (POST /sources) work as Heroku's pre-signed S3 URLs do:
// one capability URL, /source-blobs/<token>, takes the tarball by PUT
// without Authorization and gives it back by GET, for an hour. The
// tarball is kept in the store (object store "sources", which forgets it
// after store.SourceTTL), so any server can build from it.

// sourceClaims is what a source URL grants: one upload slot.
type sourceClaims struct {
	ID      string `json:"i"`
	Created int64  `json:"c"` // Unix seconds
}

// DefaultMaxSourceBytes bounds an uploaded source tarball.
const DefaultMaxSourceBytes = 1 << 30

var errBadSource = &userError{msg: "Unknown or expired source URL. Ask for a new one (POST /sources).", resource: "source", err: grid.ErrNotFound}

func (s *server) createSource(w http.ResponseWriter, r *http.Request, user string) error {
	if s.baseURL == "" {
		return errors.New("sources need the API's base URL")
	}
	url := s.base(r.Context()) + sourcePath + s.sign("source", sourceClaims{ID: store.NewID(), Created: s.now().Unix()})
	writeJSON(w, http.StatusCreated, schema.Source{SourceBlob: schema.SourceURLs{GetURL: url, PutURL: url}})
	return nil
}

const sourcePath = "/source-blobs/"

// sourceOf returns the claims of a URL this API made with POST /sources,
// if url is one and still valid.
func (s *server) sourceOf(url string) (sourceClaims, bool) {
	i := strings.Index(url, sourcePath)
	if i < 0 || !strings.HasPrefix(url, "http") {
		return sourceClaims{}, false
	}
	return s.openSource(url[i+len(sourcePath):])
}

func (s *server) openSource(token string) (sourceClaims, bool) {
	var c sourceClaims
	if !s.open("source", token, &c) {
		return c, false
	}
	age := s.now().Sub(time.Unix(c.Created, 0))
	return c, age <= store.SourceTTL && age > -time.Minute
}

// putSource is PUT /source-blobs/{token}: the upload.
func (s *server) putSource(w http.ResponseWriter, r *http.Request) {
	c, ok := s.openSource(r.PathValue("token"))
	if !ok {
		s.writeError(w, r, errBadSource)
		return
	}
	body := &bodyReader{r: http.MaxBytesReader(w, r.Body, s.maxSource)}
	if _, err := s.store.PutSource(r.Context(), c.ID, body); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(body.err, &tooBig) {
			err = &userError{msg: fmt.Sprintf("The source tarball is larger than the %d MiB limit.", s.maxSource>>20), err: grid.ErrTooLarge}
		}
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// getSource is GET /source-blobs/{token}: the download.
func (s *server) getSource(w http.ResponseWriter, r *http.Request) {
	c, ok := s.openSource(r.PathValue("token"))
	if !ok {
		s.writeError(w, r, errBadSource)
		return
	}
	rc, err := s.store.OpenSource(r.Context(), c.ID)
	if err != nil {
		if errors.Is(err, grid.ErrNotFound) {
			err = &userError{msg: "Nothing was uploaded to this source URL yet.", resource: "source", err: grid.ErrNotFound}
		}
		s.writeError(w, r, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = io.Copy(w, rc)
}

// bodyReader keeps the error reading a request body ended with, which the
// store's error only describes.
type bodyReader struct {
	r   io.Reader
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}
