package frontdoor

import (
	"errors"
	"io"
	"strconv"
)

// maxChunkLine bounds a chunk-size line (with its extensions) and a
// trailer line.
const maxChunkLine = 4096

var errBadChunk = errors.New("malformed chunked request body")

// lengthBody is a request body of known length read from the connection.
type lengthBody struct {
	c      *h1conn
	remain int64
}

func (b *lengthBody) Read(p []byte) (int, error) {
	if b.remain <= 0 {
		return 0, io.EOF
	}
	b.c.bodyStarted()
	if int64(len(p)) > b.remain {
		p = p[:b.remain]
	}
	n, err := b.c.readBody(p)
	b.remain -= int64(n)
	switch {
	case b.remain == 0:
		b.c.bodyDone = true
		return n, io.EOF
	case err == io.EOF:
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *lengthBody) Close() error { return nil }

// chunkedBody is a chunked request body read from the connection; it
// returns the data without its framing, and skips chunk extensions and
// trailers as HAProxy does.
type chunkedBody struct {
	c *h1conn
	// remain is what is left of the current chunk's data; 0 between
	// chunks.
	remain uint64
	// crlf says the CRLF after a chunk's data is still to be read.
	crlf bool
	done bool
	err  error
}

func (b *chunkedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.done {
		return 0, io.EOF
	}
	b.c.bodyStarted()
	if b.remain == 0 {
		if err := b.next(); err != nil {
			b.err = err
			return 0, err
		}
		if b.done {
			b.c.bodyDone = true
			return 0, io.EOF
		}
	}
	if uint64(len(p)) > b.remain {
		p = p[:b.remain]
	}
	n, err := b.c.readBody(p)
	b.remain -= uint64(n)
	if b.remain == 0 {
		b.crlf = true
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

// next reads up to the next chunk's data: the CRLF ending the previous
// chunk, the size line, and for the last chunk the trailers.
func (b *chunkedBody) next() error {
	if b.crlf {
		line, err := b.c.readLine(maxChunkLine)
		if err != nil {
			return err
		}
		if len(line) != 0 {
			return errBadChunk
		}
		b.crlf = false
	}
	line, err := b.c.readLine(maxChunkLine)
	if err != nil {
		return err
	}
	size := line
	for i, c := range line {
		if c == ';' || c == ' ' || c == '\t' {
			size = line[:i]
			break
		}
	}
	if len(size) == 0 || len(size) > 16 {
		return errBadChunk
	}
	n, err := strconv.ParseUint(string(size), 16, 64)
	if err != nil || n > 1<<62 {
		return errBadChunk
	}
	if n > 0 {
		b.remain = n
		return nil
	}
	// The last chunk: skip the trailers up to the empty line.
	for {
		line, err := b.c.readLine(maxChunkLine)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			b.done = true
			return nil
		}
	}
}

func (b *chunkedBody) Close() error { return nil }
