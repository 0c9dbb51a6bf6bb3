package product

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/shopfn/shopfn/shared/apperr"
	"github.com/shopfn/shopfn/shared/auth"
)

// Page sizes: 20 unless asked, never more than 100 (a page of 100 products
// stays far below the message-size limit even with long descriptions).
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

// maxQueryWords bounds the words of a search: each is one more index
// lookup, and no shopper types more.
const maxQueryWords = 16

// ListRequest is a listing as a client asks for it.
type ListRequest struct {
	Category           string
	Currency           string
	MinPrice, MaxPrice int64
	// Query is free text; its words must all appear.
	Query           string
	IncludeInactive bool
	PageSize        int
	PageToken       string
}

// List returns one page of the products matching r, ordered by name then
// id, and the token of the next page ("" on the last). include_inactive is
// honoured for admins only. Keyset paging keeps pages free of duplicates and
// gaps while products are added: each page starts after the last product
// of the previous one.
func (s *Service) List(ctx context.Context, caller auth.Principal, r ListRequest) ([]Product, string, error) {
	f, err := r.filter(caller)
	if err != nil {
		return nil, "", err
	}
	q := Query{Filter: f, Limit: pageSize(r.PageSize) + 1}
	key := f.key()
	if r.PageToken != "" {
		c, err := decodeCursor(r.PageToken)
		if err != nil || c.filter != key {
			return nil, "", ErrInvalidPageToken
		}
		q.After, q.AfterName, q.AfterID = true, c.name, c.id
	}
	ps, err := s.store.List(ctx, q)
	if err != nil {
		return nil, "", err
	}
	if len(ps) < q.Limit {
		return ps, "", nil
	}
	ps = ps[:q.Limit-1]
	last := ps[len(ps)-1]
	return ps, cursor{name: last.Name, id: last.ID, filter: key}.encode(), nil
}

func pageSize(n int) int {
	switch {
	case n <= 0:
		return DefaultPageSize
	case n > MaxPageSize:
		return MaxPageSize
	}
	return n
}

// filter checks r and returns the filter it asks for.
func (r ListRequest) filter(caller auth.Principal) (Filter, error) {
	bound := r.MinPrice > 0 || r.MaxPrice > 0
	if bound && r.Currency == "" {
		return Filter{}, apperr.Invalidf("currency_code", "required when a price bound is set")
	}
	if r.MaxPrice > 0 && r.MinPrice > r.MaxPrice {
		return Filter{}, apperr.Invalidf("max_price_minor", "must not be below min_price_minor")
	}
	return Filter{
		Category:        r.Category,
		Currency:        r.Currency,
		MinPrice:        r.MinPrice,
		MaxPrice:        r.MaxPrice,
		Words:           Words(r.Query),
		IncludeInactive: r.IncludeInactive && caller.IsAdmin(),
	}, nil
}

// Words splits a search into its distinct words, lower-cased: runs of
// letters and digits, as the full-text index splits names and
// descriptions. Everything else separates words.
func Words(query string) []string {
	fields := strings.FieldsFunc(strings.ToLower(query), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsNumber(r) && !unicode.Is(unicode.Mn, r)
	})
	var words []string
	for _, w := range fields {
		if !slices.Contains(words, w) {
			words = append(words, w)
		}
		if len(words) == maxQueryWords {
			break
		}
	}
	return words
}

// key is a hash of the filter: page tokens carry it, so a token is refused
// with any other filter.
func (f Filter) key() uint64 {
	h := fnv.New64a()
	for _, s := range []string{f.Category, f.Currency, strconv.FormatInt(f.MinPrice, 10), strconv.FormatInt(f.MaxPrice, 10),
		strings.Join(f.Words, " "), strconv.FormatBool(f.IncludeInactive)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// cursor is what a page token holds: where the previous page ended and
// which filter it was for.
type cursor struct {
	name, id string
	filter   uint64
}

// cursorVersion is the first byte of every token, so the format can change.
const cursorVersion = 1

// encode returns the token: base64url of version, filter hash, and the
// length-prefixed id and name.
func (c cursor) encode() string {
	b := make([]byte, 0, 1+8+2*binary.MaxVarintLen32+len(c.id)+len(c.name))
	b = append(b, cursorVersion)
	b = binary.BigEndian.AppendUint64(b, c.filter)
	b = binary.AppendUvarint(b, uint64(len(c.id)))
	b = append(b, c.id...)
	b = binary.AppendUvarint(b, uint64(len(c.name)))
	b = append(b, c.name...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(token string) (cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return cursor{}, err
	}
	if len(b) < 9 || b[0] != cursorVersion {
		return cursor{}, ErrInvalidPageToken
	}
	c := cursor{filter: binary.BigEndian.Uint64(b[1:9])}
	b = b[9:]
	if c.id, b, err = readString(b); err != nil {
		return cursor{}, err
	}
	if c.name, b, err = readString(b); err != nil {
		return cursor{}, err
	}
	if len(b) != 0 {
		return cursor{}, ErrInvalidPageToken
	}
	return c, nil
}

func readString(b []byte) (string, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return "", nil, ErrInvalidPageToken
	}
	return string(b[k : k+int(n)]), b[k+int(n):], nil
}
