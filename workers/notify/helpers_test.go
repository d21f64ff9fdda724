package notify_test

import (
	"encoding/base64"
	"io"
	"mime/quotedprintable"

	"github.com/google/uuid"
)

func qpReader(r io.Reader) io.Reader  { return quotedprintable.NewReader(r) }
func b64Reader(r io.Reader) io.Reader { return base64.NewDecoder(base64.StdEncoding, r) }

func uuidFor(pos uint64) uuid.UUID {
	return uuid.NewSHA1(uuid.NameSpaceX500, []byte{byte(pos >> 24), byte(pos >> 16), byte(pos >> 8), byte(pos)})
}
