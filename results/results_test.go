package results

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func sample() *Results {
	return &Results{
		Recipe: "inter/1-5", ConfigHash: "abc", Family: "inter", Pattern: "MMAMMM", Tokenizer: "byte",
		Cost:  Cost{Params: 1000, NonEmbeddingParams: 800, FLOPsPerToken: 6000, Tokens: 1 << 20, FLOPs: 6000 * (1 << 20), WallSeconds: 12.5},
		Train: &Train{FinalLoss: 1.5, BestVal: 1.6, BestStep: 100},
		LM:    &LM{NLL: 1.6, Perplexity: 4.95, BitsPerByte: 2.31},
		MQAR:  &MQAR{Vocab: 256, SeqLen: 64, Pairs: 8, Accuracy: 0.93},
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a", FileName)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	r := sample()
	if err := Write(p, r); err != nil {
		t.Fatal(err)
	}
	got, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if got.LM.BitsPerByte != 2.31 || got.Metrics["lm.bpb"] != 2.31 || got.Metrics["mqar.accuracy"] != 0.93 || got.Schema != Version {
		t.Fatalf("round trip lost data: %+v", got)
	}
	files, err := Find(dir)
	if err != nil || len(files) != 1 || files[0] != p {
		t.Fatalf("Find = %v, %v", files, err)
	}
	if _, err := Find(t.TempDir()); err == nil {
		t.Fatal("Find on an empty directory: no error")
	}
}

func TestReadRejectsNewerSchema(t *testing.T) {
	p := filepath.Join(t.TempDir(), FileName)
	os.WriteFile(p, []byte(`{"schema": 99}`), 0o644)
	if _, err := Read(p); err == nil {
		t.Fatal("schema 99 accepted")
	}
	os.WriteFile(p, []byte(`{"schema": `), 0o644)
	if _, err := Read(p); err == nil {
		t.Fatal("truncated file accepted")
	}
}

func TestCSVRoundTrip(t *testing.T) {
	a, b := sample(), sample()
	b.Recipe, b.MQAR = "transformer", nil
	var buf bytes.Buffer
	if err := WriteCSV(&buf, []*Results{a, b}); err != nil {
		t.Fatal(err)
	}
	back, err := ReadCSV(&buf, "x.csv")
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != 2 || back[1].Recipe != "transformer" {
		t.Fatalf("rows: %+v", back)
	}
	if _, ok := back[1].Metrics["mqar.accuracy"]; ok {
		t.Fatal("missing metric came back as a value")
	}
	if !reflect.DeepEqual(back[0].Metrics, a.Metrics) {
		t.Fatalf("metrics differ:\n%v\n%v", back[0].Metrics, a.Metrics)
	}
	if back[0].Cost.Params != 1000 || back[0].Cost.FLOPsPerToken != 6000 {
		t.Fatalf("cost not rebuilt: %+v", back[0].Cost)
	}
	if _, err := ReadCSV(bytes.NewBufferString("a,b\n"), "bad.csv"); err == nil {
		t.Fatal("bad header accepted")
	}
}
