package train

import (
	"bytes"
	"encoding/binary"
	"os"
	"reflect"
	"testing"
	"time"
)

// crc32cBitwise is CRC-32C written out bit by bit (reflected polynomial 0x82F63B78), an
// oracle independent of hash/crc32's tables.
func crc32cBitwise(b []byte) uint32 {
	c := ^uint32(0)
	for _, x := range b {
		c ^= uint32(x)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ 0x82F63B78
			} else {
				c >>= 1
			}
		}
	}
	return ^c
}

func TestMaskedCRC(t *testing.T) {
	// CRC-32C("123456789") = 0xE3069283, the standard check value. Masked by hand:
	// rotate right 15 → 0x2507C60D, plus 0xA282EAD8 → 0xC78AB0E5.
	if got := crc32cBitwise([]byte("123456789")); got != 0xE3069283 {
		t.Fatalf("oracle CRC-32C = %#x", got)
	}
	if got := MaskedCRC([]byte("123456789")); got != 0xC78AB0E5 {
		t.Errorf("MaskedCRC(123456789) = %#x, want 0xc78ab0e5", got)
	}
	if got := MaskedCRC(nil); got != 0xA282EAD8 { // CRC of nothing is 0: only the offset
		t.Errorf("MaskedCRC(empty) = %#x, want 0xa282ead8", got)
	}
	for _, s := range []string{"a", "brain.Event:2", string(make([]byte, 300))} {
		c := crc32cBitwise([]byte(s))
		if got, want := MaskedCRC([]byte(s)), (c>>15|c<<17)+0xa282ead8; got != want {
			t.Errorf("MaskedCRC(%q) = %#x, want %#x", s, got, want)
		}
	}
}

func TestRecordFraming(t *testing.T) {
	rec := AppendRecord(nil, []byte("123456789"))
	want := []byte{9, 0, 0, 0, 0, 0, 0, 0} // length, u64 LE
	c := crc32cBitwise(want)
	want = binary.LittleEndian.AppendUint32(want, (c>>15|c<<17)+0xa282ead8)
	want = append(want, "123456789"...)
	want = append(want, 0xE5, 0xB0, 0x8A, 0xC7) // 0xC78AB0E5 LE, from TestMaskedCRC
	if !bytes.Equal(rec, want) {
		t.Fatalf("record\n% x\nwant\n% x", rec, want)
	}
}

func TestEventEncoding(t *testing.T) {
	got := ScalarEvent(1.5, 3, Scalar{"loss", 2})
	want := []byte{
		0x09, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f, // wall_time: field 1, fixed64, 1.5
		0x10, 0x03, // step: field 2, varint 3
		0x2a, 0x0d, // summary: field 5, 13 bytes
		0x0a, 0x0b, //   value: field 1, 11 bytes
		0x0a, 0x04, 'l', 'o', 's', 's', //     tag: field 1, "loss"
		0x15, 0, 0, 0, 0x40, //     simple_value: field 2, fixed32, 2.0
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("scalar event\n% x\nwant\n% x", got, want)
	}
	got = FileVersionEvent(0)
	want = append([]byte{0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0x1a, 13}, "brain.Event:2"...)
	if !bytes.Equal(got, want) {
		t.Fatalf("file version event\n% x\nwant\n% x", got, want)
	}
	// Steps past 127 take several varint bytes.
	if got := ScalarEvent(0, 300)[9:12]; !bytes.Equal(got, []byte{0x10, 0xac, 0x02}) {
		t.Errorf("step 300 encodes as % x", got)
	}
}

// readRecords parses a TFRecord file, checking both checksums of every record.
func readRecords(t *testing.T, b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 12 {
			t.Fatalf("%d stray bytes", len(b))
		}
		n := binary.LittleEndian.Uint64(b)
		if MaskedCRC(b[:8]) != binary.LittleEndian.Uint32(b[8:]) {
			t.Fatal("length checksum mismatch")
		}
		d := b[12 : 12+n]
		if MaskedCRC(d) != binary.LittleEndian.Uint32(b[12+n:]) {
			t.Fatal("data checksum mismatch")
		}
		out = append(out, d)
		b = b[16+n:]
	}
	return out
}

func TestEventWriter(t *testing.T) {
	dir := t.TempDir()
	w, err := NewEventWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(100, 0)
	if err := w.Scalars(1, at, Scalar{"loss", 2}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	recs := readRecords(t, raw)
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	if !bytes.Contains(recs[0], []byte("brain.Event:2")) {
		t.Error("first record is not the file version")
	}
	if !reflect.DeepEqual(recs[1], ScalarEvent(100, 1, Scalar{"loss", 2})) {
		t.Errorf("second record % x", recs[1])
	}
}
