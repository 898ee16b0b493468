package data

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Token files hold a tokenised corpus so it is read, not re-tokenised. Layout, little-endian:
//
//	magic  [8]byte  "HYBTOK1\x00"
//	width  uint32   bytes per token: 2 (uint16) or 4 (uint32)
//	vocab  uint32   vocabulary size; every token is below it
//	count  uint64   number of tokens
//	tokens [count]uint16 or [count]uint32
const (
	tokMagic  = "HYBTOK1\x00"
	tokHeader = 24
)

// widthFor is 2 when every id of a vocabulary fits in a uint16, else 4.
func widthFor(vocab int) int {
	if vocab <= 1<<16 {
		return 2
	}
	return 4
}

// TokenWriter streams tokens into a token file. Nothing appears at the path until Close
// succeeds; Abort (or a failed Close) leaves no file behind.
type TokenWriter struct {
	path  string
	f     *os.File
	w     *bufio.Writer
	vocab int
	width int
	n     uint64
	buf   []byte
}

// CreateTokens starts a token file for ids in [0, vocab).
func CreateTokens(path string, vocab int) (*TokenWriter, error) {
	if vocab <= 0 || vocab > 1<<31 {
		return nil, fmt.Errorf("data.CreateTokens: vocab is %d, want in [1, 2³¹]", vocab)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("data.CreateTokens: %w", err)
	}
	if err := f.Chmod(0o644); err != nil { // CreateTemp makes files private
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("data.CreateTokens: %w", err)
	}
	tw := &TokenWriter{path: path, f: f, w: bufio.NewWriterSize(f, 1<<20), vocab: vocab, width: widthFor(vocab)}
	tw.w.Write(make([]byte, tokHeader)) // filled in by Close
	return tw, nil
}

// Write appends ids; an id outside [0, vocab) is an error and nothing of ids is written.
func (tw *TokenWriter) Write(ids []int32) error {
	for i, id := range ids {
		if id < 0 || int(id) >= tw.vocab {
			return fmt.Errorf("data.TokenWriter.Write: ids[%d] = %d outside [0, %d)", i, id, tw.vocab)
		}
	}
	tw.buf = tw.buf[:0]
	for _, id := range ids {
		if tw.width == 2 {
			tw.buf = binary.LittleEndian.AppendUint16(tw.buf, uint16(id))
		} else {
			tw.buf = binary.LittleEndian.AppendUint32(tw.buf, uint32(id))
		}
	}
	if _, err := tw.w.Write(tw.buf); err != nil {
		return fmt.Errorf("data.TokenWriter.Write: %w", err)
	}
	tw.n += uint64(len(ids))
	return nil
}

// Close writes the header, syncs and renames the file into place.
func (tw *TokenWriter) Close() error {
	err := tw.w.Flush()
	if err == nil {
		hdr := make([]byte, 0, tokHeader)
		hdr = append(hdr, tokMagic...)
		hdr = binary.LittleEndian.AppendUint32(hdr, uint32(tw.width))
		hdr = binary.LittleEndian.AppendUint32(hdr, uint32(tw.vocab))
		hdr = binary.LittleEndian.AppendUint64(hdr, tw.n)
		_, err = tw.f.WriteAt(hdr, 0)
	}
	if err == nil {
		err = tw.f.Sync()
	}
	if err == nil {
		err = tw.f.Close()
		if err == nil {
			err = os.Rename(tw.f.Name(), tw.path)
		}
	}
	if err != nil {
		tw.Abort()
		return fmt.Errorf("data.TokenWriter.Close: %w", err)
	}
	return nil
}

// Abort discards the file being written.
func (tw *TokenWriter) Abort() {
	tw.f.Close()
	os.Remove(tw.f.Name())
}

// TokenReader reads a token file in chunks.
type TokenReader struct {
	f     *os.File
	r     *bufio.Reader
	width int
	vocab int
	n     int64 // tokens in the file
	read  int64 // tokens returned so far
	buf   []byte
}

// OpenTokens opens a token file and checks its header against its size, so a truncated
// or padded file is an error here rather than garbage later.
func OpenTokens(path string) (*TokenReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("data.OpenTokens: %w", err)
	}
	r, err := openTokens(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("data.OpenTokens: %s: %w", path, err)
	}
	return r, nil
}

func openTokens(f *os.File) (*TokenReader, error) {
	hdr := make([]byte, tokHeader)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return nil, fmt.Errorf("short header: %w", err)
	}
	if string(hdr[:8]) != tokMagic {
		return nil, fmt.Errorf("not a token file (magic %q)", hdr[:8])
	}
	width := int(binary.LittleEndian.Uint32(hdr[8:]))
	vocab := int(binary.LittleEndian.Uint32(hdr[12:]))
	n := binary.LittleEndian.Uint64(hdr[16:])
	if width != 2 && width != 4 {
		return nil, fmt.Errorf("token width %d, want 2 or 4", width)
	}
	if vocab == 0 || width < widthFor(vocab) {
		return nil, fmt.Errorf("vocab %d does not fit %d-byte tokens", vocab, width)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	body := fi.Size() - tokHeader
	if n > uint64(body)/uint64(width) {
		return nil, fmt.Errorf("truncated: header says %d tokens (%d bytes), file has %d bytes after the header", n, n*uint64(width), body)
	}
	if want := int64(n) * int64(width); body != want {
		return nil, fmt.Errorf("%d bytes after %d tokens", body-want, n)
	}
	return &TokenReader{f: f, r: bufio.NewReaderSize(f, 1<<20), width: width, vocab: vocab, n: int64(n)}, nil
}

// Len is the number of tokens in the file.
func (tr *TokenReader) Len() int64 { return tr.n }

// Vocab is the vocabulary size recorded in the header.
func (tr *TokenReader) Vocab() int { return tr.vocab }

// Read fills dst with the next tokens and returns how many; io.EOF after the last.
// A token not below Vocab is an error: the file is corrupt.
func (tr *TokenReader) Read(dst []int32) (int, error) {
	k := min(int64(len(dst)), tr.n-tr.read)
	if k == 0 {
		if len(dst) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	need := int(k) * tr.width
	if cap(tr.buf) < need {
		tr.buf = make([]byte, need)
	}
	b := tr.buf[:need]
	if _, err := io.ReadFull(tr.r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // the file shrank after OpenTokens
		}
		return 0, fmt.Errorf("data.TokenReader.Read: %w", err)
	}
	for i := range int(k) {
		var v uint32
		if tr.width == 2 {
			v = uint32(binary.LittleEndian.Uint16(b[2*i:]))
		} else {
			v = binary.LittleEndian.Uint32(b[4*i:])
		}
		if int64(v) >= int64(tr.vocab) {
			return 0, fmt.Errorf("data.TokenReader.Read: token %d is %d, vocab is %d", tr.read+int64(i), v, tr.vocab)
		}
		dst[i] = int32(v)
	}
	tr.read += k
	return int(k), nil
}

// Close closes the file.
func (tr *TokenReader) Close() error { return tr.f.Close() }

// WriteStream saves s as a token file, atomically.
func WriteStream(path string, s *Stream) error {
	tw, err := CreateTokens(path, s.vocab)
	if err != nil {
		return err
	}
	buf := make([]int32, 1<<16)
	for off := 0; off < s.Len(); off += len(buf) {
		n := s.Copy(buf, off)
		if err := tw.Write(buf[:n]); err != nil {
			tw.Abort()
			return err
		}
	}
	return tw.Close()
}

// ReadStream loads a whole token file into memory.
func ReadStream(path string) (*Stream, error) {
	tr, err := OpenTokens(path)
	if err != nil {
		return nil, err
	}
	defer tr.Close()
	if tr.n > int64(maxInt) {
		return nil, fmt.Errorf("data.ReadStream: %s: %d tokens is too many", path, tr.n)
	}
	s := newStream(tr.vocab, int(tr.n))
	buf := make([]int32, 1<<16)
	for {
		n, err := tr.Read(buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("data.ReadStream: %s: %w", path, err)
		}
		s.append(buf[:n])
	}
	return s, nil
}

const maxInt = int(^uint(0) >> 1)
