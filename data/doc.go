// Package data turns text into the int32 token batches a language model trains on:
// tokenizers, corpora, packed token streams and seeded, resumable batching.
//
// The pieces compose in one line each:
//
//	src, _ := data.GoSource()                       // Go standard library, split by file
//	tok := data.ByteTokenizer{}                     // or data.TrainBPE(src.Train.Subset(0.05, "bpe"), 4096)
//	train, _ := data.Pack(src.Train, tok, data.NoSep) // one uint16 token stream
//	ld, _ := data.NewLoader(train, B, T, seed)       // shuffled (B, T) batches, State/Restore
//	val, _ := data.Pack(src.Val, tok, data.NoSep)
//	ev, _ := data.NewEval(val, B, T)                 // sequential batches for validation
//
// Glossary: B rows per batch, T tokens per row (the context length). A window is T+1
// consecutive tokens of a stream; its first T are the inputs and its last T the targets, so
// targets are inputs shifted left by one. Batches are row-major (B, T): index b*T + t.
//
// Tokens are int32 at the API (what embedding lookups take) but are stored as uint16 when the
// vocabulary fits, so a stream of n tokens holds about 2n bytes: the 90 MB Go corpus packs to
// about 180 MB with the byte tokenizer.
package data
