"""Audio encoder throughput on CPU: padding-free ``ContextASRAudioModel`` vs transformers' ``WhisperModel`` encoder.

Throughput is seconds of audio encoded per wall-clock second, for the tiny and flash presets, one CPU thread, fp32,
no grad. Ours gets each clip as it is (log-mel front end, encoder and projector all timed; a batch is padded only to
its longest clip). The peer, ``WhisperModel(...).encoder`` with the same width, depth and heads and Whisper's
1500-position (30 s) table, gets the clip's log-mel features zero-padded to 30 s, as ``WhisperModel`` requires;
its front end and our projector's counterpart are not timed, so the peer is favoured. A padded 30 s input costs
the peer the same for any clip up to 30 s. Prints a table and writes ``results/encoder.json``.

    python packages/ming-contextasr/benchmarks/bench_encoder.py [--repeats 5] [--flash-repeats 3]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from ming_contextasr import ContextASRAudioConfig, ContextASRAudioModel
from ming_testdata.results import describe_machine, write_results
from ming_testdata.timing import median_seconds

RESULTS = Path(__file__).parent / "results" / "encoder.json"
WHISPER_POSITIONS = 1500  # Whisper's 30 s window, in encoder frames
SAMPLE_RATE = 16_000
COLUMNS = [
    "preset",
    "input",
    "audio s",
    "ours ms",
    "WhisperModel (30 s padded) ms",
    "ours audio s/s",
    "WhisperModel audio s/s",
    "speed-up",
]
# (label, clip lengths in seconds) per row; a row with several clips is one padded batch.
CASES = {
    "tiny": [("1 clip", (1.0,)), ("1 clip", (5.0,)), ("1 clip", (10.0,)), ("1 clip", (30.0,)),
             ("batch of 8", (2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0))],
    "flash": [("1 clip", (5.0,)), ("1 clip", (10.0,)), ("1 clip", (30.0,))],
}  # fmt: skip


def peer_encoder(config: ContextASRAudioConfig, ours: ContextASRAudioModel) -> torch.nn.Module:
    """transformers' Whisper encoder (the class of ``WhisperModel.encoder``) of the same shape with a 30 s table,
    holding our encoder's weights."""
    whisper = config.whisper_config()
    whisper.max_source_positions = WHISPER_POSITIONS
    whisper._attn_implementation = "sdpa"
    encoder = WhisperEncoder(whisper).eval()
    state = ours.encoder.state_dict()
    table = state["embed_positions.weight"]
    # tiny's table (10 s) is shorter than 30 s: the peer keeps its own rows there.
    state["embed_positions.weight"] = table[:WHISPER_POSITIONS] if len(table) >= WHISPER_POSITIONS else None
    if state["embed_positions.weight"] is None:
        state["embed_positions.weight"] = encoder.embed_positions.weight
    encoder.load_state_dict(state)
    return encoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per case (tiny)")
    parser.add_argument("--flash-repeats", type=int, default=3, help="timed runs per case (flash)")
    parser.add_argument("--presets", nargs="+", choices=list(CASES), default=list(CASES))
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)

    rows = []
    for preset in args.presets:
        cases = CASES[preset]
        config = getattr(ContextASRAudioConfig, preset)()
        repeats = args.repeats if preset == "tiny" else args.flash_repeats
        ours = ContextASRAudioModel(config).eval()
        peer = peer_encoder(config, ours)
        padded_frames = 2 * WHISPER_POSITIONS
        peer_ms: dict[int, float] = {}  # by batch size: a padded 30 s input costs the same for any clip
        for label, lengths in cases:
            clips = [0.1 * torch.randn(round(s * SAMPLE_RATE)) for s in lengths]
            with torch.no_grad():
                ours_s = median_seconds(lambda model=ours, clips=clips: model(clips), repeats, warmup=repeats > 1)
                if len(clips) not in peer_ms:
                    features = torch.stack(
                        [torch.nn.functional.pad(f, (0, padded_frames - f.shape[-1])) for f in map(ours.log_mel, clips)]
                    )
                    peer_ms[len(clips)] = 1e3 * median_seconds(
                        lambda model=peer, f=features: model(f), repeats, warmup=repeats > 1
                    )
            audio = sum(lengths)
            ours_ms = 1e3 * ours_s
            row = {
                "preset": preset,
                "input": f"{label}, {'–'.join(f'{s:g}' for s in sorted({min(lengths), max(lengths)}))} s",
                "audio s": f"{audio:g}",
                "ours ms": f"{ours_ms:,.1f}",
                "WhisperModel (30 s padded) ms": f"{peer_ms[len(clips)]:,.1f}",
                "ours audio s/s": f"{audio / ours_s:,.1f}",
                "WhisperModel audio s/s": f"{audio / (peer_ms[len(clips)] / 1e3):,.1f}",
                "speed-up": f"{peer_ms[len(clips)] / ours_ms:.2f}×",
            }
            rows.append(row)
            print(" | ".join(row[c] for c in COLUMNS), flush=True)
        del ours, peer

    write_results(
        RESULTS,
        title="Audio encoder throughput: padding-free encoder + projector vs WhisperModel's 30 s padded encoder",
        command="nox -s bench-ming-contextasr",
        machine=describe_machine("1 thread", torch=torch.__version__),
        columns=COLUMNS,
        rows=rows,
        notes=(
            "fp32, no grad, median of "
            f"{args.repeats} runs (tiny) / {args.flash_repeats} (flash). Ours: front end + encoder + projector on "
            "the clips as they are (tiny: 10 s windows, so 30 s is 3 windows; flash: one window up to 300 s). "
            "WhisperModel: the encoder alone, same shape and weights, on log-mel features zero-padded to 30 s "
            "(3000 frames), measured once per batch size since a padded input costs the same for any clip length."
        ),
    )


if __name__ == "__main__":
    main()
