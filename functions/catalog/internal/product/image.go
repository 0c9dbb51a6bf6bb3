package product

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	eventsv1 "github.com/shopfn/shopfn/proto/shopfn/events/v1"
	"github.com/shopfn/shopfn/shared/apperr"
	"github.com/shopfn/shopfn/shared/outbox"
	"github.com/shopfn/shopfn/shared/store"
)

// sniffLen is how many leading bytes content sniffing reads (all that
// http.DetectContentType looks at).
const sniffLen = 512

// cleanupTimeout bounds deleting a staging object after the request ended.
const cleanupTimeout = 10 * time.Second

// imageTypes are the accepted originals and their object name extensions.
var imageTypes = map[string]string{
	"image/jpeg": ".jpg",
	"image/png":  ".png",
	"image/webp": ".webp",
}

// Upload is a stored original.
type Upload struct {
	Image       Image
	ContentType string
	Size        int64
}

// UploadImage stores an image of the product productID whose bytes next
// returns chunk by chunk (io.EOF after the last), records it on the product
// (PROCESSING) and emits catalog.image.uploaded in the same transaction.
//
// The bytes stream into a staging object (never held in memory), hashed on
// the way; the original then goes under a name made of the product and the
// hash, so uploading the same bytes again writes no new object, records
// nothing new and emits no second event, unless the image's processing
// FAILED: then it goes back to PROCESSING and is announced again. Whatever
// fails, the staging object is removed. An unknown product fails before anything is written.
func (s *Service) UploadImage(ctx context.Context, productID string, next func() ([]byte, error)) (Upload, error) {
	if _, err := s.store.ByID(ctx, productID); err != nil {
		return Upload{}, err
	}
	bucket, err := s.bucket.Get(ctx)
	if err != nil {
		return Upload{}, fmt.Errorf("open image bucket: %w", err)
	}

	// Read up to sniffLen bytes to learn the type before writing anything.
	var (
		head []byte
		size int64
		rest []byte // the part of the chunk that crossed sniffLen
	)
	for len(head) < sniffLen {
		chunk, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Upload{}, err
		}
		if size += int64(len(chunk)); size > s.images.MaxBytes {
			return Upload{}, s.tooLarge()
		}
		n := min(sniffLen-len(head), len(chunk))
		head = append(head, chunk[:n]...)
		rest = chunk[n:]
	}
	if size == 0 {
		return Upload{}, apperr.Invalidf("chunk", "no image bytes after the header")
	}
	ctype := http.DetectContentType(head)
	ext, ok := imageTypes[ctype]
	if !ok {
		return Upload{}, ErrImageType.With("detected", ctype)
	}

	staging := "staging/" + store.NewID("upl")
	defer s.remove(ctx, bucket, staging)
	sum := sha256.New()
	n, err := s.stage(ctx, bucket, staging, ctype, sum, size, next, head, rest)
	if err != nil {
		return Upload{}, err
	}
	size = n

	imageID := hex.EncodeToString(sum.Sum(nil))
	object := "products/" + productID + "/images/" + imageID + "/original" + ext
	exists, err := bucket.Exists(ctx, object)
	if err != nil {
		return Upload{}, fmt.Errorf("look for %s: %w", object, err)
	}
	if !exists {
		if err := bucket.Copy(ctx, object, staging, nil); err != nil {
			return Upload{}, fmt.Errorf("copy %s to %s: %w", staging, object, err)
		}
	}

	now := s.stamp()
	img := Image{ID: imageID, Object: object, ContentType: ctype, Size: size, State: ImageProcessing, Since: now}
	_, err = s.store.Update(ctx, productID, func(p *Product) (bool, []outbox.Event, error) {
		eventID := imageEventID(productID, imageID)
		switch i := slices.IndexFunc(p.Images, func(im Image) bool { return im.ID == imageID }); {
		case i >= 0 && p.Images[i].State != ImageFailed:
			img = p.Images[i] // the same bytes again: already recorded and announced
			return false, nil, nil
		case i >= 0:
			// Its processing failed: uploading it again asks for another
			// try (after a fix to imaging, or a raised limit). The event
			// of each try has its own id.
			img = p.Images[i]
			img.State, img.Failure, img.Variants, img.Since = ImageProcessing, "", nil, now
			p.Images = slices.Clone(p.Images)
			p.Images[i] = img
			eventID += "-r" + strconv.FormatInt(p.Revision+1, 10)
		default:
			p.Images = append(slices.Clone(p.Images), img)
		}
		p.Revision, p.Updated = p.Revision+1, now
		return true, []outbox.Event{{
			ID:          eventID,
			Type:        outbox.TypeImageUploaded,
			Source:      Source,
			Subject:     productID,
			OrderingKey: productID,
			Time:        now,
			Data: &eventsv1.ImageUploaded{
				ProductId:   productID,
				ImageId:     imageID,
				Bucket:      s.images.BucketURL,
				Object:      object,
				ContentType: ctype,
				SizeBytes:   size,
			},
		}}, nil
	})
	if err != nil {
		// The original stays: it is complete, and a retry finds it.
		return Upload{}, err
	}
	return Upload{Image: img, ContentType: img.ContentType, Size: img.Size}, nil
}

// stage writes the upload to the object name: the bytes already read
// (head, then rest), then every chunk next returns, hashing them into sum.
// It returns the size. On failure the write is aborted (the writer's
// context is cancelled before Close), so no partial object remains.
func (s *Service) stage(ctx context.Context, bucket *blob.Bucket, name, ctype string, sum hash.Hash, size int64,
	next func() ([]byte, error), head, rest []byte) (int64, error) {
	wctx, abort := context.WithCancel(ctx)
	defer abort()
	w, err := bucket.NewWriter(wctx, name, &blob.WriterOptions{ContentType: ctype})
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", name, err)
	}
	out := io.MultiWriter(w, sum)
	fail := func(err error) (int64, error) {
		abort()
		w.Close() // aborted: reports the cancellation, leaves nothing
		return 0, err
	}
	for _, b := range [][]byte{head, rest} {
		if _, err := out.Write(b); err != nil {
			return fail(fmt.Errorf("write %s: %w", name, err))
		}
	}
	for {
		chunk, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fail(err)
		}
		if size += int64(len(chunk)); size > s.images.MaxBytes {
			return fail(s.tooLarge())
		}
		if _, err := out.Write(chunk); err != nil {
			return fail(fmt.Errorf("write %s: %w", name, err))
		}
	}
	if err := w.Close(); err != nil {
		return 0, fmt.Errorf("close %s: %w", name, err)
	}
	return size, nil
}

func (s *Service) tooLarge() error {
	return ErrImageTooLarge.With("max_bytes", strconv.FormatInt(s.images.MaxBytes, 10))
}

// remove deletes a staging object, even when the request's context has
// ended; a missing object (never written, or aborted) is fine.
func (s *Service) remove(ctx context.Context, bucket *blob.Bucket, name string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := bucket.Delete(ctx, name); err != nil && !isNotFound(err) {
		s.log.WarnContext(ctx, "delete staging object", "object", name, "error", err.Error())
	}
}

// imageEventID is the deterministic id of the event announcing an image of
// a product: recording the same upload twice would fail as a duplicate.
func imageEventID(productID, imageID string) string {
	h := sha256.Sum256([]byte(productID + "/" + imageID))
	return "evt_img_" + hex.EncodeToString(h[:16])
}

func isNotFound(err error) bool { return gcerrors.Code(err) == gcerrors.NotFound }
