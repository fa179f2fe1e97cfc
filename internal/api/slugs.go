package api

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/schema"
)

// GET /apps/{app}/slugs/{slug} describes a slug; its blob URL (a signed
// capability, an hour) downloads the archive, as Heroku's S3 URLs do.

// slugClaims is what a slug blob URL grants.
type slugClaims struct {
	ID      string `json:"i"`
	Created int64  `json:"c"`
}

const slugURLWindow = time.Hour

func (s *server) getSlug(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	sl, err := s.store.Slug(r.Context(), r.PathValue("slug"))
	if err != nil || sl.App != a.Name {
		return notFound("slug")
	}
	writeJSON(w, http.StatusOK, schema.Slug{
		ID:                           sl.ID,
		Blob:                         schema.SlugBlob{Method: "GET", URL: s.base(r.Context()) + "/slug-blobs/" + s.sign("slug", slugClaims{ID: sl.ID, Created: s.now().Unix()})},
		BuildpackProvidedDescription: optional(sl.BuildpackDescription),
		Checksum:                     optional(sl.Checksum),
		Commit:                       optional(sl.Commit),
		ProcessTypes:                 sl.ProcessTypes,
		Size:                         sl.Size,
		Stack:                        stackRef,
		CreatedAt:                    apiTime(sl.CreatedAt),
		UpdatedAt:                    apiTime(sl.CreatedAt),
	})
	return nil
}

var errBadSlugURL = &userError{msg: "Unknown or expired slug URL. Ask for the slug again.", resource: "slug", err: grid.ErrNotFound}

// getSlugBlob is GET /slug-blobs/{token}: the slug's tar.gz.
func (s *server) getSlugBlob(w http.ResponseWriter, r *http.Request) {
	var c slugClaims
	if !s.open("slug", r.PathValue("token"), &c) || s.now().Sub(time.Unix(c.Created, 0)) > slugURLWindow {
		s.writeError(w, r, errBadSlugURL)
		return
	}
	sl, err := s.store.Slug(r.Context(), c.ID)
	if err != nil {
		if errors.Is(err, grid.ErrNotFound) {
			err = errBadSlugURL
		}
		s.writeError(w, r, err)
		return
	}
	rc, err := s.store.OpenSlug(r.Context(), c.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("Content-Length", strconv.FormatInt(sl.Size, 10))
	_, _ = io.Copy(w, rc)
}
