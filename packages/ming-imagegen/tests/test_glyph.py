"""The quoted-text extractor of the Glyph-ByT5 branch, and the branch inside the pipeline."""

import pytest
import torch

from ming_imagegen import CONDITION_TYPES, extract_quoted_text


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a red circle next to a square", []),
        ('a sign that says "OPEN"', ["OPEN"]),
        ('"HELLO" and "WORLD" on two lines', ["HELLO", "WORLD"]),
        (r'a poster: "say \"hi\" now"', ['say "hi" now']),
        (r'a path "C:\\temp" on screen', ["C:\\temp"]),
        ("a mug with “Dad’s “best” coffee” printed", ["Dad’s “best” coffee"]),
        ("a banner 「新年快乐」 in red", ["新年快乐"]),
        ('“outer "straight inside" text”', ['outer "straight inside" text']),
        ('"curly “inside” straight"', ["curly “inside” straight"]),
        ("the cat's toy and the dog's bone", []),
        (r"an escaped \"not a quote\" here", []),
        ('empty "" and blank "   " quotes, then "X"', ["X"]),
        ('closed "A" then an unclosed "B and more', ["A"]),
        ("“unbalanced “nested” close", []),
        ("", []),
    ],
)
def test_quoted_text_extraction(prompt, expected):
    assert extract_quoted_text(prompt) == expected


def test_quoted_text_adds_glyph_tokens_that_change_the_image(pipe):
    plain = pipe.encode_condition(["a shop sign"])
    quoted = pipe.encode_condition(['a shop sign "OPEN"', "a shop sign"])
    glyph = quoted.types == CONDITION_TYPES["glyph"]
    assert not (plain.types == CONDITION_TYPES["glyph"]).any()
    # Row 0: "OPEN" + EOS = 5 byte tokens; row 1 quotes nothing, its glyph slots are padding (masked out).
    assert glyph[0].sum() == 5
    assert (quoted.mask & glyph)[0].sum() == 5
    assert not (quoted.mask & glyph)[1].any()
    # The query tokens of the unquoted prompt do not depend on its batch-mate's glyph tokens.
    torch.testing.assert_close(quoted.tokens[1][~glyph[1]], plain.tokens[0], atol=1e-5, rtol=0)

    def image(prompt):
        return pipe(prompt, num_inference_steps=2, seed=0, output_type="pt").images

    assert (image('a shop sign "OPEN"') - image('a shop sign "SHUT"')).abs().max() > 1e-4
