package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/dynogrid/grid/internal/grid"
	"github.com/dynogrid/grid/internal/schema"
)

var formationFields = []rangeField[schema.Formation]{
	{"type", func(f schema.Formation) string { return f.Type }, typeKey},
	{"id", func(f schema.Formation) string { return f.ID }, textKey},
}

// typeKey sorts process types web first, then alphabetically, as
// grid.Formation.SortedTypes does.
func typeKey(t string) (string, bool) {
	if t == "web" {
		return "\x00", true
	}
	return "\x01" + t, true
}

// formationView shows one process type. The store keeps no ids or times
// per formation entry: the id is derived from app and type, and the times
// are the app's.
func formationView(a grid.App, typ string, ft grid.FormationType) schema.Formation {
	size := sizeName(ft.Size)
	return schema.Formation{
		ID:        stableID("formation", a.ID, typ),
		Type:      typ,
		Command:   ft.Command,
		Quantity:  ft.Quantity,
		Size:      size,
		DynoSize:  schema.DynoSize{ID: sizeID(ft.Size), Name: size},
		App:       schema.Ref{ID: a.ID, Name: a.Name},
		CreatedAt: apiTime(a.CreatedAt),
		UpdatedAt: apiTime(a.UpdatedAt),
	}
}

// sizeName is a size's display name ("Standard-1X"), as the API shows it.
func sizeName(name string) string {
	if sz, err := grid.LookupSize(name); err == nil {
		return sz.DisplayName
	}
	return name
}

func sizeID(name string) string {
	if name == "" {
		name = grid.DefaultSize
	}
	return stableID("size", strings.ToLower(name))
}

func (s *server) listFormation(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	f, err := s.store.Formation(r.Context(), a.Name)
	if err != nil {
		return err
	}
	views := []schema.Formation{}
	for _, t := range f.SortedTypes() {
		views = append(views, formationView(a, t, f.Types[t]))
	}
	return writeList(w, r, views, formationFields)
}

func (s *server) getFormation(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	f, err := s.store.Formation(r.Context(), a.Name)
	if err != nil {
		return err
	}
	typ := r.PathValue("type")
	ft, ok := f.Types[typ]
	if !ok {
		return notFound("formation")
	}
	writeJSON(w, http.StatusOK, formationView(a, typ, ft))
	return nil
}

// batchUpdateFormation is PATCH /apps/{app}/formation {"updates": [...]}.
// It answers with the updated process types.
func (s *server) batchUpdateFormation(w http.ResponseWriter, r *http.Request, user string) error {
	var body schema.FormationBatchUpdate
	if err := decode(r, &body); err != nil {
		return err
	}
	scales, err := scales(body.Updates, "")
	if err != nil {
		return err
	}
	views, err := s.scale(r, user, scales)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, views)
	return nil
}

// updateFormation is PATCH /apps/{app}/formation/{type} {quantity, size}.
func (s *server) updateFormation(w http.ResponseWriter, r *http.Request, user string) error {
	var body schema.FormationUpdate
	if err := decode(r, &body); err != nil {
		return err
	}
	scales, err := scales([]schema.FormationUpdate{body}, r.PathValue("type"))
	if err != nil {
		return err
	}
	views, err := s.scale(r, user, scales)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, views[0])
	return nil
}

// scales turns wire updates into grid scales. typ, if set, is the type
// from the path and overrides the updates' own.
func scales(updates []schema.FormationUpdate, typ string) ([]grid.Scale, error) {
	if len(updates) == 0 {
		return nil, invalid(`No updates given. Send {"updates": [{"type": "web", "quantity": 2}]}.`)
	}
	out := make([]grid.Scale, 0, len(updates))
	for _, u := range updates {
		sc := grid.Scale{Type: u.Type, Size: sizeByNameOrID(u.SizeName())}
		if typ != "" {
			sc.Type = typ
		}
		if sc.Type == "" {
			return nil, invalid("Each update needs a process type (\"type\": \"web\").")
		}
		if err := grid.ValidateProcessType(sc.Type); err != nil {
			return nil, err
		}
		if u.Quantity != nil {
			n, rel, err := grid.ParseQuantity(string(*u.Quantity))
			if err != nil {
				return nil, err
			}
			sc.Quantity, sc.Relative = &n, rel
		}
		out = append(out, sc)
	}
	return out, nil
}

// sizeByNameOrID maps a dyno_size id back to its name; names pass through.
func sizeByNameOrID(s string) string {
	for _, sz := range grid.Sizes {
		if s == sizeID(sz.Name) {
			return sz.Name
		}
	}
	return strings.ToLower(s)
}

// scale applies scales to the request's app's formation with
// compare-and-set and returns the updated types in request order.
func (s *server) scale(r *http.Request, user string, scales []grid.Scale) ([]schema.Formation, error) {
	a, err := s.appOf(r)
	if err != nil {
		return nil, err
	}
	f, err := s.store.UpdateFormation(r.Context(), a.Name, func(f *grid.Formation) error {
		next, err := f.Apply(scales)
		if err != nil {
			return err
		}
		*f = next
		return nil
	})
	if err != nil {
		return nil, err
	}
	var types []string
	for _, sc := range scales {
		if !slices.Contains(types, sc.Type) {
			types = append(types, sc.Type)
		}
	}
	views := make([]schema.Formation, len(types))
	for i, t := range types {
		views[i] = formationView(a, t, f.Types[t])
	}
	s.audit(a.Name, "Scaled to "+scaleSummary(f, types)+" by user "+user)
	return views, nil
}

// scaleSummary renders types of f as the Heroku audit line does:
// "web@3:Standard-1X worker@1:Standard-1X".
func scaleSummary(f grid.Formation, types []string) string {
	var parts []string
	for _, t := range f.SortedTypes() {
		if slices.Contains(types, t) {
			parts = append(parts, fmt.Sprintf("%s@%d:%s", t, f.Types[t].Quantity, sizeName(f.Types[t].Size)))
		}
	}
	return strings.Join(parts, " ")
}

// bumpEpochs restarts the given process types (all when types is nil) by
// bumping their epochs; the manager then replaces their dynos,
// start-before-stop. A named type the formation lacks is ErrNotFound.
func (s *server) bumpEpochs(r *http.Request, app string, types []string) error {
	_, err := s.store.UpdateFormation(r.Context(), app, func(f *grid.Formation) error {
		if len(f.Types) == 0 && types == nil {
			return errNoChange // nothing to restart; do not create a formation
		}
		for _, t := range types {
			if _, ok := f.Types[t]; !ok {
				return notFound("formation")
			}
		}
		for t, ft := range f.Types {
			if types == nil || slices.Contains(types, t) {
				ft.Epoch++
				f.Types[t] = ft
			}
		}
		return nil
	})
	if errors.Is(err, errNoChange) {
		return nil
	}
	return err
}

// restartType is DELETE /apps/{app}/formations/{type}.
func (s *server) restartType(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	if err := s.bumpEpochs(r, a.Name, []string{r.PathValue("type")}); err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, struct{}{})
	return nil
}

// stopType is POST /apps/{app}/formations/{type}/actions/stop: every dyno
// of the type is stopped, and (as on Heroku's Common Runtime) started
// again by the manager, since the formation still wants it.
func (s *server) stopType(w http.ResponseWriter, r *http.Request, user string) error {
	a, err := s.appOf(r)
	if err != nil {
		return err
	}
	typ := r.PathValue("type")
	f, err := s.store.Formation(r.Context(), a.Name)
	if err != nil {
		return err
	}
	if _, ok := f.Types[typ]; !ok {
		return notFound("formation")
	}
	_, err = s.deleteAssignments(r.Context(), func(as grid.Assignment) bool { return as.App == a.Name && as.Type == typ })
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, struct{}{})
	return nil
}
