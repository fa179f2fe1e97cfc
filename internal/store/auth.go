package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/dynogrid/grid/internal/grid"
)

// apiKey is what is stored for an API key: never the key itself, only its
// SHA-256, so a copy of the store does not hand out credentials.
type apiKey struct {
	Email string `json:"email"`
}

func keyID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "k" + hex.EncodeToString(sum[:])
}

// PutAPIKey records that key authenticates the account with that email.
func (s *Store) PutAPIKey(ctx context.Context, key, email string) error {
	_, err := s.keys.put(ctx, keyID(key), apiKey{Email: email})
	return err
}

// LookupAPIKey returns the email of the account a key belongs to, or
// ErrUnauthorized.
func (s *Store) LookupAPIKey(ctx context.Context, key string) (string, error) {
	if key == "" {
		return "", fmt.Errorf("no API key given: %w", grid.ErrUnauthorized)
	}
	k, _, err := s.keys.get(ctx, keyID(key))
	if errors.Is(err, grid.ErrNotFound) {
		return "", fmt.Errorf("invalid API key: %w", grid.ErrUnauthorized)
	}
	return k.Email, err
}
