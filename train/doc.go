// Package train is the training loop: AdamW with decoupled weight decay, global-norm gradient
// clipping, gradient accumulation, learning-rate schedules, token/step/FLOP budgets, atomic
// safetensors checkpoints with exact resume, metrics (JSON lines and TensorBoard event files)
// and a console progress bar.
//
// The loop knows the model only through the small Model interface (its parameters and a loss on
// one batch), so any network built on a tensor.Tape trains with it:
//
//	res, err := train.Run(ctx, train.Options{
//		Model: m, Backend: be, Train: loader, Eval: eval,
//		Recipe: r.Train, FLOPsPerToken: count.TrainFLOPs(),
//		Dir: "runs/x", Progress: os.Stderr,
//	})
//
// A run directory holds
//
//	metrics.jsonl                 one JSON object per step (and per evaluation), appended and flushed
//	events.out.tfevents.*         TensorBoard scalars loss, lr, grad_norm, val_loss (one file per process)
//	ckpt-000100/model.safetensors parameters and AdamW moments (opt.m.<name>, opt.v.<name>)
//	ckpt-000100/state.json        step, tokens seen, loader position, seed, config hash, losses
//	latest                        the name of the newest complete checkpoint directory
//
// Every file that must never be seen half-written (checkpoints, latest) is written to a
// temporary file in the same directory, synced and renamed into place, and latest moves only
// after the checkpoint it names is complete, so a crash or a non-finite loss always leaves the
// last good checkpoint to resume from.
//
// Glossary: B rows per micro-batch, T tokens per row, A micro-batches per step (gradient
// accumulation), step = one optimizer update over A·B·T tokens, counted from 1.
package train
