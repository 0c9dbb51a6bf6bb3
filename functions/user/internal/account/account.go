// Package account is the user service's domain: accounts, their
// credentials, and the rules for reading and changing them.
package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
	errorsv1 "github.com/shopfn/shopfn/proto/shopfn/errors/v1"
	"github.com/shopfn/shopfn/shared/apperr"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/store"
)

// Account is a user and their credentials.
type Account struct {
	ID             string
	Email          string // normalised
	DisplayName    string
	Role           auth.Role // RoleCustomer or RoleAdmin
	PasswordHash   string
	DefaultAddress *commonv1.Address // nil when unset
	Created        time.Time
	Updated        time.Time
}

// The domain's errors.
var (
	ErrEmailTaken         = apperr.New(apperr.Conflict, errorsv1.ErrorReason_EMAIL_TAKEN, "email already registered")
	ErrInvalidCredentials = apperr.New(apperr.Unauthenticated, errorsv1.ErrorReason_INVALID_CREDENTIALS, "wrong email or password")
	ErrNotFound           = apperr.New(apperr.NotFound, errorsv1.ErrorReason_USER_NOT_FOUND, "user not found")
	ErrLoginThrottled     = apperr.New(apperr.Exhausted, errorsv1.ErrorReason_LOGIN_THROTTLED, "too many login attempts; try again later")
)

// Store keeps accounts. Implementations translate their driver's errors
// into ErrEmailTaken and ErrNotFound.
type Store interface {
	// Create stores a new account; ErrEmailTaken if the email exists.
	Create(ctx context.Context, a Account) error
	// ByID returns an account; ErrNotFound if there is none.
	ByID(ctx context.Context, id string) (Account, error)
	// ByEmail returns the account with the normalised email; ErrNotFound.
	ByEmail(ctx context.Context, email string) (Account, error)
	// Update changes an account with fn inside one transaction and returns
	// it as stored; ErrNotFound if there is none. Nothing is written when fn
	// fails, and fn's error is returned. The display name, role, password
	// hash, default address and update time can change; the id, the email
	// and the create time stay as they are. fn may run more than once (a
	// transaction that lost a race is retried), so it must have no side
	// effects.
	Update(ctx context.Context, id string, fn func(*Account) error) (Account, error)
}

// LoginLimits bound login attempts: per email (guessing one account's
// password) and per client address (trying many accounts).
type LoginLimits struct {
	PerEmailPerMinute  float64 `envconfig:"SHOPFN_LOGIN_PER_EMAIL_PER_MINUTE" default:"5"`
	PerEmailBurst      int     `envconfig:"SHOPFN_LOGIN_PER_EMAIL_BURST" default:"5"`
	PerClientPerMinute float64 `envconfig:"SHOPFN_LOGIN_PER_CLIENT_PER_MINUTE" default:"60"`
	PerClientBurst     int     `envconfig:"SHOPFN_LOGIN_PER_CLIENT_BURST" default:"20"`
}

// hashConcurrency bounds password hashes running at once: each holds
// argonMemoryKiB, so 4 keep a burst of logins under 30 MiB on an instance
// that may have 512 MiB in all, and more would only queue on the CPUs.
const hashConcurrency = 4

// Service implements the account rules.
type Service struct {
	store       Store
	signer      *auth.Signer
	adminEmails map[string]bool
	perEmail    *auth.Limiter
	perClient   *auth.Limiter
	hashing     chan struct{}
	now         func() time.Time

	dummyOnce sync.Once
	dummyHash string
}

// NewService returns the service. Accounts registered with one of
// adminEmails become admins.
func NewService(s Store, signer *auth.Signer, adminEmails []string, limits LoginLimits) *Service {
	admins := make(map[string]bool, len(adminEmails))
	for _, e := range adminEmails {
		if e = NormalizeEmail(e); e != "" {
			admins[e] = true
		}
	}
	return &Service{
		store:       s,
		signer:      signer,
		adminEmails: admins,
		perEmail:    auth.NewLimiter(limits.PerEmailPerMinute/60, limits.PerEmailBurst),
		perClient:   auth.NewLimiter(limits.PerClientPerMinute/60, limits.PerClientBurst),
		hashing:     make(chan struct{}, hashConcurrency),
		now:         time.Now,
	}
}

// NormalizeEmail is the form emails are stored and compared in.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// Register creates a customer account (an admin one for the configured
// admin emails).
func (s *Service) Register(ctx context.Context, email, password, displayName string) (Account, error) {
	hash, err := s.hash(ctx, password)
	if err != nil {
		return Account{}, err
	}
	now := s.now().UTC().Truncate(time.Microsecond) // what the store keeps
	a := Account{
		ID:           store.NewID("usr"),
		Email:        NormalizeEmail(email),
		DisplayName:  strings.TrimSpace(displayName),
		Role:         auth.RoleCustomer,
		PasswordHash: hash,
		Created:      now,
		Updated:      now,
	}
	if s.adminEmails[a.Email] {
		a.Role = auth.RoleAdmin
	}
	if err := s.store.Create(ctx, a); err != nil {
		return Account{}, fmt.Errorf("create account: %w", err)
	}
	return a, nil
}

// Login checks the credentials and returns the account with a fresh access
// token. Unknown email and wrong password fail the same way, and take the
// same time (a hash is computed either way).
func (s *Service) Login(ctx context.Context, email, password, clientAddr string) (Account, string, time.Time, error) {
	email = NormalizeEmail(email)
	if ok, wait := s.perClient.Allow(clientAddr); !ok {
		return Account{}, "", time.Time{}, ErrLoginThrottled.With("retry_after_ms", fmt.Sprint(wait.Milliseconds()+1))
	}
	if ok, wait := s.perEmail.Allow(email); !ok {
		return Account{}, "", time.Time{}, ErrLoginThrottled.With("retry_after_ms", fmt.Sprint(wait.Milliseconds()+1))
	}
	a, err := s.store.ByEmail(ctx, email)
	switch {
	case errors.Is(err, ErrNotFound):
		// Spend the time a real check would, then fail like a wrong password.
		if _, err := s.check(ctx, password, s.dummy()); err != nil {
			return Account{}, "", time.Time{}, err
		}
		return Account{}, "", time.Time{}, ErrInvalidCredentials
	case err != nil:
		return Account{}, "", time.Time{}, fmt.Errorf("find account: %w", err)
	}
	ok, err := s.check(ctx, password, a.PasswordHash)
	if err != nil {
		return Account{}, "", time.Time{}, err
	}
	if !ok {
		return Account{}, "", time.Time{}, ErrInvalidCredentials
	}
	tok, exp, err := s.signer.Issue(auth.Principal{Subject: a.ID, Role: a.Role})
	if err != nil {
		return Account{}, "", time.Time{}, err
	}
	return a, tok, exp, nil
}

// Get returns the account id as caller may see it: customers only
// themselves (another's account is ErrNotFound, so ids cannot be probed),
// admins and services anyone.
func (s *Service) Get(ctx context.Context, caller auth.Principal, id string) (Account, error) {
	if !mayAccess(caller, id) {
		return Account{}, ErrNotFound
	}
	return s.store.ByID(ctx, id)
}

// Patch lists profile changes; nil fields are left alone.
type Patch struct {
	DisplayName *string
	// SetAddress changes the default address to Address (nil clears it).
	SetAddress bool
	Address    *commonv1.Address
}

// UpdateProfile applies patch to the account id, with Get's access rule.
func (s *Service) UpdateProfile(ctx context.Context, caller auth.Principal, id string, p Patch) (Account, error) {
	if !mayAccess(caller, id) {
		return Account{}, ErrNotFound
	}
	now := s.now().UTC().Truncate(time.Microsecond) // what the store keeps
	return s.store.Update(ctx, id, func(a *Account) error {
		if p.DisplayName != nil {
			a.DisplayName = strings.TrimSpace(*p.DisplayName)
		}
		if p.SetAddress {
			a.DefaultAddress = p.Address
		}
		a.Updated = now
		return nil
	})
}

func mayAccess(caller auth.Principal, id string) bool {
	return caller.Subject == id || caller.Role == auth.RoleAdmin || caller.Role == auth.RoleService
}

// hash computes a password hash within the concurrency bound.
func (s *Service) hash(ctx context.Context, password string) (string, error) {
	if err := s.acquire(ctx); err != nil {
		return "", err
	}
	defer s.release()
	return hashPassword(password)
}

func (s *Service) check(ctx context.Context, password, hash string) (bool, error) {
	if err := s.acquire(ctx); err != nil {
		return false, err
	}
	defer s.release()
	ok, err := checkPassword(password, hash)
	if err != nil {
		return false, fmt.Errorf("check password: %w", err)
	}
	return ok, nil
}

func (s *Service) acquire(ctx context.Context) error {
	select {
	case s.hashing <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Service) release() { <-s.hashing }

// dummy is a hash of nothing anyone knows, made on first need (not at
// start-up: cold start matters more than the first unknown-email login).
func (s *Service) dummy() string {
	s.dummyOnce.Do(func() {
		h, err := hashPassword("not a password: " + store.NewID("x"))
		if err == nil {
			s.dummyHash = h
		}
	})
	return s.dummyHash
}
