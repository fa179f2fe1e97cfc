# Convenience targets; each calls ./run, which is what the README and CI use.
.PHONY: up test build check bench
up:    ; ./run up
test:  ; ./run test
build: ; ./run build
check: ; ./run check
bench: ; ./run bench
