package data_test

import (
	"fmt"
	"path/filepath"

	"github.com/hybridlab/hybrid/data"
)

func ExampleByteTokenizer() {
	tok := data.ByteTokenizer{}
	ids := tok.Encode("hé")
	fmt.Println(ids, tok.Decode(ids), tok.VocabSize())
	// Output: [104 195 169] hé 256
}

func ExampleTrainBPE() {
	tok, err := data.TrainBPE(data.Texts{"aaabdaaabac"}, 1000)
	if err != nil {
		panic(err)
	}
	for id := 256; id < tok.VocabSize(); id++ {
		fmt.Printf("%d=%q\n", id, tok.Token(int32(id)))
	}
	ids := tok.Encode("aaabdaaabac")
	fmt.Println(ids, tok.Decode(ids))
	// Output:
	// 256="aa"
	// 257="ab"
	// 258="aaab"
	// [258 100 258 97 99] aaabdaaabac
}

func ExampleLoader() {
	// A toy stream; in training it comes from data.Pack(split.Train, tok, data.NoSep).
	s, _ := data.NewStream(data.ByteTokenizer{}.Encode("abcdefghijklmnopqrstuvwxyz"), 256)
	ld, _ := data.NewLoader(s, 2, 4, 1)
	var b data.Batch
	ld.Next(&b)
	saved := ld.State() // store with the checkpoint
	for r := range b.B {
		fmt.Printf("%q → %q\n", string(toBytes(b.Inputs[r*b.T:(r+1)*b.T])), string(toBytes(b.Targets[r*b.T:(r+1)*b.T])))
	}
	ld.Next(&b)
	want := b.Inputs[0]
	ld2, _ := data.NewLoader(s, 2, 4, 1)
	ld2.Restore(saved) // resume: the same batches follow
	ld2.Next(&b)
	fmt.Println(b.Inputs[0] == want)
	// Output:
	// "defg" → "efgh"
	// "hijk" → "ijkl"
	// true
}

func toBytes(ids []int32) []byte {
	b := make([]byte, len(ids))
	for i, id := range ids {
		b[i] = byte(id)
	}
	return b
}

func ExampleGoSource() {
	src, err := data.GoSource()
	if err != nil {
		panic(err) // no Go installation
	}
	train, err := data.PackCached(filepath.Join("cache", "tokens"), src.Train, data.ByteTokenizer{}, data.NoSep)
	if err != nil {
		panic(err)
	}
	var u data.Unigram
	u.AddStream(train)
	fmt.Printf("%s: %d tokens, unigram entropy %.2f bits/byte\n", src.Name, train.Len(), u.BitsPerByte(src.Train.Bytes()))
}
