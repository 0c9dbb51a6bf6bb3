// Package accountfs stores accounts in Firestore, for deployments with
// several instances (SHOPFN_STORE=firestore); accountdb is the SQLite
// store for one.
//
// The database (one per service, see serve.Platform.FirestoreDatabaseName)
// has two collections:
//
//   - "users": one document per account, named by the account id (ids a
//     document name cannot hold are encoded, see fsstore.DocID), with the
//     account's fields: the default address as binary protobuf, as in
//     SQLite; times with Firestore's microsecond precision.
//   - "user_emails": one document per registered email, named by the
//     SHA-256 (hex) of the normalised email, holding the account id and the
//     email. Firestore has no unique index: Create writes the account and
//     its email document in one transaction, and a second account with the
//     same email fails on the existing email document. The name is a hash
//     because an email may hold characters a document id may not ("/", or
//     the "__…__" form Firestore reserves).
//
// ByEmail queries "users" on the email field (a single-field index, which
// Firestore creates by itself): one round trip on the login path.
//
// Every read-modify-write runs in a transaction (reads before writes,
// nothing but local variables set inside, since the client runs the
// function again when the transaction aborts). There is no in-memory cache:
// several instances write, so only the database knows the current account.
package accountfs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/protobuf/proto"

	"github.com/shopfn/shopfn/functions/user/internal/account"
	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/store/fsstore"
)

// The collections.
const (
	Users  = "users"
	Emails = "user_emails"
)

// user is a document of Users.
type user struct {
	ID             string    `firestore:"id"`
	Email          string    `firestore:"email"`
	DisplayName    string    `firestore:"display_name"`
	Role           string    `firestore:"role"`
	PasswordHash   string    `firestore:"password_hash"`
	DefaultAddress []byte    `firestore:"default_address"` // binary commonv1.Address; empty when unset (see fromSnap)
	Created        time.Time `firestore:"create_time"`
	Updated        time.Time `firestore:"update_time"`
}

// email is a document of Emails.
type email struct {
	UserID string `firestore:"user_id"`
	Email  string `firestore:"email"`
}

// Store is account.Store on Firestore.
type Store struct {
	*fsstore.Conn
}

var _ account.Store = (*Store)(nil)

// Open starts connecting to the named database of project in the
// background and returns the store at once; its calls wait for the client.
// Done and Err report when it is ready, or why it failed.
func Open(ctx context.Context, project, database string) *Store {
	return &Store{Conn: fsstore.OpenInBackground(ctx, project, database)}
}

// emailDoc is the name of the email's document in Emails.
func emailDoc(normalisedEmail string) string {
	sum := sha256.Sum256([]byte(normalisedEmail))
	return hex.EncodeToString(sum[:])
}

// Create implements account.Store.
func (s *Store) Create(ctx context.Context, a account.Account) error {
	c, err := s.Client(ctx)
	if err != nil {
		return err
	}
	d, err := toDoc(a)
	if err != nil {
		return err
	}
	emailRef := c.Collection(Emails).Doc(emailDoc(a.Email))
	err = c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		// Reading the email document first makes a concurrent Create of
		// the same email conflict here (and retry, then see it) rather than
		// only at commit.
		_, err := tx.Get(emailRef)
		switch {
		case err == nil:
			return account.ErrEmailTaken
		case !fsstore.IsNotFound(err):
			return fmt.Errorf("read email: %w", err)
		}
		if err := tx.Create(emailRef, email{UserID: a.ID, Email: a.Email}); err != nil {
			return err
		}
		return tx.Create(c.Collection(Users).Doc(fsstore.DocID(a.ID)), d)
	}, firestore.MaxAttempts(fsstore.MaxAttempts))
	switch {
	case errors.Is(err, account.ErrEmailTaken):
		return err
	case fsstore.IsAlreadyExists(err):
		// The email document (or, against all odds, the random id) was
		// created by a transaction that committed first.
		return account.ErrEmailTaken.Wrap(err)
	case err != nil:
		return fmt.Errorf("insert user: %w", err)
	}
	return nil
}

// ByID implements account.Store.
func (s *Store) ByID(ctx context.Context, id string) (account.Account, error) {
	c, err := s.Client(ctx)
	if err != nil {
		return account.Account{}, err
	}
	snap, err := c.Collection(Users).Doc(fsstore.DocID(id)).Get(ctx)
	if err != nil {
		return account.Account{}, readErr(err)
	}
	return fromSnap(snap)
}

// ByEmail implements account.Store.
func (s *Store) ByEmail(ctx context.Context, email string) (account.Account, error) {
	c, err := s.Client(ctx)
	if err != nil {
		return account.Account{}, err
	}
	snaps, err := c.Collection(Users).Where("email", "==", email).Limit(1).Documents(ctx).GetAll()
	if err != nil {
		return account.Account{}, fmt.Errorf("read user: %w", err)
	}
	if len(snaps) == 0 {
		return account.Account{}, account.ErrNotFound
	}
	return fromSnap(snaps[0])
}

// Update implements account.Store.
func (s *Store) Update(ctx context.Context, id string, fn func(*account.Account) error) (account.Account, error) {
	c, err := s.Client(ctx)
	if err != nil {
		return account.Account{}, err
	}
	ref := c.Collection(Users).Doc(fsstore.DocID(id))
	var out account.Account
	err = c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		snap, err := tx.Get(ref)
		if err != nil {
			return readErr(err)
		}
		old, err := fromSnap(snap)
		if err != nil {
			return err
		}
		a := old // fromSnap made a fresh address: fn may change it in place
		if err := fn(&a); err != nil {
			return err
		}
		a.ID, a.Email, a.Created = old.ID, old.Email, old.Created // not changeable
		d, err := toDoc(a)
		if err != nil {
			return err
		}
		if err := tx.Set(ref, d); err != nil {
			return err
		}
		out = a
		return nil
	}, firestore.MaxAttempts(fsstore.MaxAttempts))
	if err != nil {
		return account.Account{}, err
	}
	return out, nil
}

// readErr translates a failed read of a user document.
func readErr(err error) error {
	if fsstore.IsNotFound(err) {
		return account.ErrNotFound
	}
	return fmt.Errorf("read user: %w", err)
}

func toDoc(a account.Account) (user, error) {
	d := user{
		ID: a.ID, Email: a.Email, DisplayName: a.DisplayName, Role: string(a.Role), PasswordHash: a.PasswordHash,
		Created: a.Created.UTC(), Updated: a.Updated.UTC(),
	}
	if a.DefaultAddress != nil {
		b, err := proto.Marshal(a.DefaultAddress)
		if err != nil {
			return user{}, fmt.Errorf("encode address: %w", err)
		}
		d.DefaultAddress = b
	}
	return d, nil
}

func fromSnap(snap *firestore.DocumentSnapshot) (account.Account, error) {
	var d user
	if err := snap.DataTo(&d); err != nil {
		return account.Account{}, fmt.Errorf("decode user %s: %w", snap.Ref.ID, err)
	}
	a := account.Account{
		ID: d.ID, Email: d.Email, DisplayName: d.DisplayName, Role: auth.Role(d.Role), PasswordHash: d.PasswordHash,
		Created: d.Created.UTC(), Updated: d.Updated.UTC(),
	}
	// Firestore gives unset bytes back as empty, not nil: an empty value
	// is no address. (An address with every field empty, which would
	// encode to nothing, fails validation before it reaches the store.)
	if len(d.DefaultAddress) > 0 {
		a.DefaultAddress = &commonv1.Address{}
		if err := proto.Unmarshal(d.DefaultAddress, a.DefaultAddress); err != nil {
			return account.Account{}, fmt.Errorf("decode address of %s: %w", d.ID, err)
		}
	}
	return a, nil
}
