// Package accountdb stores accounts in SQLite.
package accountdb

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shopfn/shopfn/functions/user/internal/account"
	commonv1 "github.com/shopfn/shopfn/proto/shopfn/common/v1"
	"github.com/shopfn/shopfn/shared/auth"
	"github.com/shopfn/shopfn/shared/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations are the schema's migrations, for store.OpenSQLite.
func Migrations() store.Migrations {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded directory always exists
	}
	return store.Migrations{Name: "user", FS: sub}
}

const columns = `id, email, display_name, role, password_hash, default_address, create_time, update_time`

// The statements, prepared once: parsing SQL costs more than running these
// point queries.
const (
	sqlInsert  = `INSERT INTO users (` + columns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	sqlByID    = `SELECT ` + columns + ` FROM users WHERE id = ?`
	sqlByEmail = `SELECT ` + columns + ` FROM users WHERE email = ?`
	sqlUpdate  = `UPDATE users SET display_name = ?, role = ?, password_hash = ?, default_address = ?, update_time = ? WHERE id = ?`
)

// db is the open database and its prepared statements.
type db struct {
	*sql.DB
	insert, byID, byEmail, update *sql.Stmt
}

// Store is account.Store on SQLite.
type Store struct {
	open  *store.Opening[*db]
	cache *store.Cache[string, account.Account]
}

var _ account.Store = (*Store)(nil)

// Open starts opening (creating, migrating, preparing) the database at path
// in the background and returns the store at once; its calls wait for the
// database. Done and Err report when it is ready, or why it failed. Up to
// cacheSize accounts read by id are kept in memory (0 turns that off); the
// process must be the only writer of the file, as it is for one instance.
func Open(ctx context.Context, path string, cacheSize int) *Store {
	return &Store{cache: store.NewCache[string, account.Account](cacheSize), open: store.InBackground(func() (*db, error) {
		sqlDB, err := store.OpenSQLite(ctx, path, Migrations())
		if err != nil {
			return nil, err
		}
		d := &db{DB: sqlDB}
		if err := store.Prepare(ctx, sqlDB, []store.Statement{{Dst: &d.insert, SQL: sqlInsert}, {Dst: &d.byID, SQL: sqlByID}, {Dst: &d.byEmail, SQL: sqlByEmail}, {Dst: &d.update, SQL: sqlUpdate}}); err != nil {
			return nil, err
		}
		return d, nil
	})}
}

// Done is closed when the database is open or failed to open (see Err).
func (s *Store) Done() <-chan struct{} { return s.open.Done() }

// Err returns why the database failed to open, once Done is closed.
func (s *Store) Err() error { return s.open.Err() }

// Close closes the database (waiting for it to open first).
func (s *Store) Close() error {
	d, err := s.open.Wait()
	if err != nil {
		return nil // nothing was left open
	}
	return d.Close() // closes the statements too
}

// Create implements account.Store.
func (s *Store) Create(ctx context.Context, a account.Account) error {
	d, err := s.open.Get(ctx)
	if err != nil {
		return err
	}
	addr, err := marshalAddress(a.DefaultAddress)
	if err != nil {
		return err
	}
	// Through InTx, so the insert shares a commit with concurrent writes.
	err = store.InTx(ctx, d.DB, func(tx *sql.Tx) error {
		_, err := tx.StmtContext(ctx, d.insert).ExecContext(ctx, a.ID, a.Email, a.DisplayName, string(a.Role), a.PasswordHash, addr, a.Created.UnixMicro(), a.Updated.UnixMicro())
		return err
	})
	if store.IsUniqueViolation(err) {
		return account.ErrEmailTaken.Wrap(err)
	}
	if err != nil {
		return fmt.Errorf("insert user: %w", err)
	}
	return nil
}

// ByID implements account.Store.
func (s *Store) ByID(ctx context.Context, id string) (account.Account, error) {
	a, gen, ok := s.cache.Get(id)
	if ok {
		return a, nil
	}
	d, err := s.open.Get(ctx)
	if err != nil {
		return account.Account{}, err
	}
	a, err = scan(d.byID.QueryRowContext(pointRead(ctx), id))
	if err != nil {
		return account.Account{}, err
	}
	s.cache.Fill(id, a, gen)
	return a, nil
}

// ByEmail implements account.Store.
func (s *Store) ByEmail(ctx context.Context, email string) (account.Account, error) {
	d, err := s.open.Get(ctx)
	if err != nil {
		return account.Account{}, err
	}
	return scan(d.byEmail.QueryRowContext(pointRead(ctx), email))
}

// Update implements account.Store.
func (s *Store) Update(ctx context.Context, id string, fn func(*account.Account) error) (account.Account, error) {
	d, err := s.open.Get(ctx)
	if err != nil {
		return account.Account{}, err
	}
	var a account.Account
	err = store.InTx(ctx, d.DB, func(tx *sql.Tx) error {
		var err error
		if a, err = scan(tx.StmtContext(ctx, d.byID).QueryRowContext(ctx, id)); err != nil {
			return err
		}
		keptID, keptEmail, keptCreated := a.ID, a.Email, a.Created
		if err := fn(&a); err != nil {
			return err
		}
		a.ID, a.Email, a.Created = keptID, keptEmail, keptCreated // not changeable
		addr, err := marshalAddress(a.DefaultAddress)
		if err != nil {
			return err
		}
		_, err = tx.StmtContext(ctx, d.update).ExecContext(ctx, a.DisplayName, string(a.Role), a.PasswordHash, addr, a.Updated.UnixMicro(), id)
		if err != nil {
			return fmt.Errorf("update user: %w", err)
		}
		return nil
	})
	// Invalidate even when the commit failed: whether it happened is unknown.
	s.cache.Invalidate(id)
	return a, err
}

// pointRead detaches a one-row lookup by key from its request's
// cancellation: it takes microseconds, and a cancellable context makes the
// driver start a goroutine per query to watch it.
func pointRead(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

func scan(row *sql.Row) (account.Account, error) {
	var (
		a                account.Account
		role             string
		addr             []byte
		created, updated int64
	)
	err := row.Scan(&a.ID, &a.Email, &a.DisplayName, &role, &a.PasswordHash, &addr, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return account.Account{}, account.ErrNotFound
	}
	if err != nil {
		return account.Account{}, fmt.Errorf("read user: %w", err)
	}
	a.Role = auth.Role(role)
	a.Created, a.Updated = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
	if addr != nil {
		a.DefaultAddress = &commonv1.Address{}
		if err := proto.Unmarshal(addr, a.DefaultAddress); err != nil {
			return account.Account{}, fmt.Errorf("decode address of %s: %w", a.ID, err)
		}
	}
	return a, nil
}

func marshalAddress(a *commonv1.Address) ([]byte, error) {
	if a == nil {
		return nil, nil
	}
	b, err := proto.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode address: %w", err)
	}
	return b, nil
}
