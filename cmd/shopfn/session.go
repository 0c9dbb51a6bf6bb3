package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// session is what `shopfn user login` remembers for later commands.
type session struct {
	AccessToken string    `json:"access_token"`
	ExpireTime  time.Time `json:"expire_time"`
	UserID      string    `json:"user_id"`
	Email       string    `json:"email"`
	// Addr is the user service the token came from; tokens of another
	// deployment are not sent.
	Addr string `json:"addr"`
}

var errNoSession = errors.New("not logged in: run `shopfn user login` first")

// sessionPath is $SHOPFN_CONFIG_DIR/session.json, by default in the user's
// configuration directory (~/.config/shopfn on Linux).
func sessionPath() (string, error) {
	dir := os.Getenv("SHOPFN_CONFIG_DIR")
	if dir == "" {
		base, err := os.UserConfigDir()
		if err != nil {
			return "", fmt.Errorf("find config dir (set SHOPFN_CONFIG_DIR): %w", err)
		}
		dir = filepath.Join(base, "shopfn")
	}
	return filepath.Join(dir, "session.json"), nil
}

func saveSession(s session) (string, error) {
	path, err := sessionPath()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return "", err
	}
	// The token is a credential: readable by the user only.
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return "", fmt.Errorf("save session: %w", err)
	}
	return path, nil
}

// loadSession returns the saved session for the user service at addr.
func loadSession(addr string) (session, error) {
	path, err := sessionPath()
	if err != nil {
		return session{}, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return session{}, errNoSession
	}
	if err != nil {
		return session{}, err
	}
	var s session
	if err := json.Unmarshal(b, &s); err != nil {
		return session{}, fmt.Errorf("read %s: %w", path, err)
	}
	if s.Addr != addr {
		return session{}, fmt.Errorf("the saved session is for %s, not %s: %w", s.Addr, addr, errNoSession)
	}
	if time.Now().After(s.ExpireTime) {
		return session{}, fmt.Errorf("the saved session expired at %s: %w", s.ExpireTime.Format(time.RFC3339), errNoSession)
	}
	return s, nil
}
