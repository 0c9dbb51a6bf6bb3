package product

import (
	"context"
	"strconv"

	"github.com/shopfn/shopfn/shared/apperr"
	"github.com/shopfn/shopfn/shared/store"
)

// MaxImportItems is the most items one import stream may carry.
const MaxImportItems = 10_000

// importBatch is how many items share one transaction. A commit costs a WAL
// write and sync (~100 µs here) while an item costs ~20 µs, so batching a
// few hundred makes commits negligible; more would only hold the write lock
// longer against other writers and delay the first items' visibility.
const importBatch = 256

// ImportError says why one import item was refused.
type ImportError struct {
	Index   int
	SKU     string
	Reason  string
	Message string
}

// ImportReport sums up an import.
type ImportReport struct {
	Received, Created, Updated, Unchanged int
	Errors                                []ImportError
}

// Import is one import stream in progress: items go in with Add, in stream
// order, and are written in batches; Finish writes the rest and reports.
// Each item stands alone: a bad one is reported and never stops the
// others, and an item identical to the stored product writes nothing.
type Import struct {
	svc     *Service
	pending []Draft
	first   int // stream index of pending[0]
	report  ImportReport
}

// NewImport starts an import.
func (s *Service) NewImport() *Import {
	return &Import{svc: s, pending: make([]Draft, 0, importBatch)}
}

// Add takes the next item of the stream; invalid, when not nil, says why the
// item was refused before reaching the service (its SKU is d.SKU as sent).
// Past MaxImportItems it writes what it holds and returns ErrImportTooLong
// with the counts so far; other errors end the import (the context ended).
func (im *Import) Add(ctx context.Context, d Draft, invalid error) error {
	if im.report.Received == MaxImportItems {
		if err := im.flush(ctx); err != nil {
			return err
		}
		r := im.report
		return ErrImportTooLong.With(
			"received", strconv.Itoa(r.Received), "created", strconv.Itoa(r.Created), "updated", strconv.Itoa(r.Updated),
			"unchanged", strconv.Itoa(r.Unchanged), "errors", strconv.Itoa(len(r.Errors)))
	}
	index := im.report.Received
	im.report.Received++
	if invalid != nil {
		im.fail(ctx, index, d.SKU, invalid)
		return nil
	}
	if len(im.pending) == 0 {
		im.first = index
	}
	im.pending = append(im.pending, d)
	if len(im.pending) == importBatch {
		return im.flush(ctx)
	}
	return nil
}

// Finish writes the items still held and returns the report.
func (im *Import) Finish(ctx context.Context) (ImportReport, error) {
	if err := im.flush(ctx); err != nil {
		return ImportReport{}, err
	}
	return im.report, nil
}

func (im *Import) flush(ctx context.Context) error {
	if len(im.pending) == 0 {
		return nil
	}
	// Invalid items between valid ones were reported as they came; keep
	// the report in stream order.
	results, err := im.svc.store.Import(ctx, im.pending, im.svc.merge())
	if err != nil {
		return err
	}
	var failed []ImportError
	for i, r := range results {
		switch r.Outcome {
		case Created:
			im.report.Created++
		case Updated:
			im.report.Updated++
		case Unchanged:
			im.report.Unchanged++
		default:
			failed = append(failed, im.svc.importError(ctx, im.first+i, im.pending[i].SKU, r.Err))
		}
	}
	if len(failed) > 0 {
		im.report.Errors = mergeByIndex(im.report.Errors, failed)
	}
	im.pending = im.pending[:0]
	return nil
}

func (im *Import) fail(ctx context.Context, index int, sku string, err error) {
	im.report.Errors = append(im.report.Errors, im.svc.importError(ctx, index, sku, err))
}

// importError describes a refused item for the client; unclassified causes
// are logged here, since no interceptor sees them.
func (s *Service) importError(ctx context.Context, index int, sku string, err error) ImportError {
	e, unknown := apperr.Classify(err)
	if unknown {
		s.log.ErrorContext(ctx, "import item failed", "index", index, "sku", sku, "error", err.Error())
	}
	return ImportError{Index: index, SKU: sku, Reason: e.Reason.String(), Message: e.Message}
}

// mergeByIndex merges two lists sorted by Index.
func mergeByIndex(a, b []ImportError) []ImportError {
	out := make([]ImportError, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if a[0].Index <= b[0].Index {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return append(append(out, a...), b...)
}

// merge is the upsert rule: a new SKU creates a product, a different draft
// updates it (new revision), an identical one leaves it as it is.
func (s *Service) merge() Merge {
	now := s.stamp()
	return func(existing *Product, d Draft) (Product, Outcome) {
		if existing == nil {
			return Product{ID: store.NewID("prd"), Draft: d, Revision: 1, Created: now, Updated: now}, Created
		}
		if existing.Draft == d {
			return *existing, Unchanged
		}
		p := *existing
		p.Draft, p.Revision, p.Updated = d, p.Revision+1, now
		return p, Updated
	}
}
