package train

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// TensorBoard event files, as TensorBoard reads them (and W&B's `wandb sync
// --sync-tensorboard`). The file is a sequence of TFRecords:
//
//	u64 LE  len(data)
//	u32 LE  masked CRC-32C of those 8 length bytes
//	data    one Event protobuf
//	u32 LE  masked CRC-32C of data
//
// with mask(c) = ((c >> 15) | (c << 17)) + 0xa282ead8. The Event protobuf is encoded by hand:
// wall_time (field 1, double), step (2, int64), file_version (3, string; "brain.Event:2" in the
// first record) and summary (5) holding repeated value (1) {tag (1, string), simple_value (2,
// float)}.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// MaskedCRC is the TFRecord checksum of b: CRC-32C, rotated right by 15 and offset.
func MaskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return (c>>15 | c<<17) + 0xa282ead8
}

// AppendRecord appends data framed as one TFRecord to dst.
func AppendRecord(dst, data []byte) []byte {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(data)))
	dst = append(dst, n[:]...)
	dst = binary.LittleEndian.AppendUint32(dst, MaskedCRC(n[:]))
	dst = append(dst, data...)
	return binary.LittleEndian.AppendUint32(dst, MaskedCRC(data))
}

// Protobuf wire types.
const (
	wireVarint  = 0
	wire64      = 1
	wireBytes   = 2
	wire32      = 5
	fieldWall   = 1
	fieldStep   = 2
	fieldFileV  = 3
	fieldSumm   = 5
	fieldValue  = 1
	fieldTag    = 1
	fieldSimple = 2
)

func appendKey(b []byte, field, wire int) []byte {
	return binary.AppendUvarint(b, uint64(field<<3|wire))
}

func appendBytesField(b []byte, field int, v []byte) []byte {
	b = appendKey(b, field, wireBytes)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// eventHeader encodes an Event's wall_time and step.
func eventHeader(wall float64, step int64) []byte {
	b := appendKey(nil, fieldWall, wire64)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(wall))
	b = appendKey(b, fieldStep, wireVarint)
	return binary.AppendUvarint(b, uint64(step)) // int64 fields encode negatives as 10-byte two's complement
}

// FileVersionEvent is the Event every event file starts with.
func FileVersionEvent(wall float64) []byte {
	return appendBytesField(eventHeader(wall, 0), fieldFileV, []byte("brain.Event:2"))
}

// Scalar is one tagged value of a summary.
type Scalar struct {
	Tag   string
	Value float32
}

// ScalarEvent encodes an Event whose summary holds the scalars, at step and wall time (seconds
// since the Unix epoch).
func ScalarEvent(wall float64, step int64, scalars ...Scalar) []byte {
	var summ []byte
	for _, s := range scalars {
		v := appendBytesField(nil, fieldTag, []byte(s.Tag))
		v = appendKey(v, fieldSimple, wire32)
		v = binary.LittleEndian.AppendUint32(v, math.Float32bits(s.Value))
		summ = appendBytesField(summ, fieldValue, v)
	}
	return appendBytesField(eventHeader(wall, step), fieldSumm, summ)
}

// EventWriter appends scalar summaries to a TensorBoard event file.
type EventWriter struct {
	f    *os.File
	w    *bufio.Writer
	path string
	rec  []byte
}

var eventSeq atomic.Int64

// NewEventWriter creates dir/events.out.tfevents.<unix seconds>.<host>.<pid>.<n> and writes the
// file_version record. Each process (each resumed session) writes its own file; TensorBoard
// reads them all.
func NewEventWriter(dir string) (*EventWriter, error) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	now := time.Now()
	name := fmt.Sprintf("events.out.tfevents.%d.%s.%d.%d", now.Unix(), host, os.Getpid(), eventSeq.Add(1))
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	e := &EventWriter{f: f, w: bufio.NewWriter(f), path: path}
	if err := e.write(FileVersionEvent(wallSeconds(now))); err != nil {
		f.Close()
		return nil, err
	}
	return e, e.Flush()
}

func wallSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// Path is the event file's path.
func (e *EventWriter) Path() string { return e.path }

func (e *EventWriter) write(event []byte) error {
	e.rec = AppendRecord(e.rec[:0], event)
	_, err := e.w.Write(e.rec)
	return err
}

// Scalars writes one event with the scalars at step (buffered; call Flush).
func (e *EventWriter) Scalars(step int, wall time.Time, scalars ...Scalar) error {
	return e.write(ScalarEvent(wallSeconds(wall), int64(step), scalars...))
}

// Flush writes buffered events to the file.
func (e *EventWriter) Flush() error { return e.w.Flush() }

// Close flushes and closes the file.
func (e *EventWriter) Close() error {
	err := e.w.Flush()
	if cerr := e.f.Close(); err == nil {
		err = cerr
	}
	return err
}
