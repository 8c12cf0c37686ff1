"""ContextASR metrics on hand-computed examples (ContextASR-Bench definitions, see DESIGN.md)."""

from __future__ import annotations

import pytest

from ming_contextasr import match_entities, match_entities_fuzzy, normalize_text, score_corpus, score_utterance


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I'm taking the T O E F L test, OK?", "i am taking the toefl test ok"),
        ("Don’t stop — it's well-known!", "do not stop it is well known"),
        ("我在北京大学，见到了张三丰。", "我 在 北 京 大 学 见 到 了 张 三 丰"),
        ("2024年的iPhone很好", "2024年 的 iphone 很 好"),
        ("Call A B Cs at 5 o' clock", "call abcs at 5 o clock"),
        ("O'Brien's", "o brien s"),
        ("   ", ""),
    ],
)
def test_normalisation(text, expected):
    assert normalize_text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Expanded by `contractions.fix(text, leftovers=False, slang=False)`, as the scorer calls it; none of these was
        # in the hand-written table this package used to carry.
        ("Here's Zorbak", "here is zorbak"),
        ("That'll do, who'd know what'd happen", "that will do who would know what did happen"),
        ("I'd've told 'em 'twas fine", "i would have told them it was fine"),
        ("We're gonna wanna gimme that", "we are going to want to give me that"),
        ("See you on Jan. 5 or dec. 3", "see you on january 5 or december 3"),
        ("everyone's here, this's it", "everyone is here this is it"),
        # Curly apostrophes: contractions written with "’" expand too; any other "’" splits its word like "'".
        ("Here’s Zorbak’s car, isn’t it", "here is zorbak s car is not it"),
        # A lone "o'" keeps its letter (otherwise `contractions` reads "o' clock" as "of clock"); the scorer's rule
        # knows only the straight apostrophe, so "o’ clock" does become "of clock".
        ("O' clock and o' clock", "o clock and o clock"),
        ("‘Quoted’ o’ clock", "quoted of clock"),
    ],
)
def test_contractions_as_the_scorer_expands_them(text, expected):
    assert normalize_text(text) == expected


def test_capitals_and_the_dotted_capital_i():
    # All-capital text is lower-cased first, as in the scorer, so "IS" and "SS" then merge as letter + plural "s".
    assert normalize_text("HERE'S SS") == "here isss"
    assert normalize_text("Here's SS") == "here is ss"
    # `contractions` crashes on text whose lower-casing changes length ("İ"): such text is lower-cased first.
    assert normalize_text("İstanbul don't") == "i\u0307stanbul do not"


def test_contractions_beyond_the_old_table_do_not_count_as_errors():
    score = score_utterance(
        "Here's Zorbak, y'all gonna see 'em", "here is zorbak you all going to see them", ["Zorbak"]
    )
    assert (score.errors, score.reference_tokens) == (0, 9)
    assert score.ne_fnr == 0.0


def test_single_letter_words_with_s_merge_like_the_scorer():
    # The scorer treats "is" as letter + plural s, so "is a" joins; both sides get the same treatment.
    assert normalize_text("it is a test") == "it isa test"


def test_english_wer_and_single_token_entity():
    score = score_utterance(
        "I'm meeting Dr. Zorbak at the T O E F L center.",
        "I am meeting doctor Zorback at the TOEFL centre",
        ["Zorbak"],
    )
    assert score.reference == "i am meeting dr zorbak at the toefl center"
    assert (score.errors, score.reference_tokens) == (3, 9)  # dr, zorbak, center substituted
    assert score.wer == pytest.approx(3 / 9)
    assert score.reference_entities == ("zorbak",)
    assert score.hypothesis_entities == ()
    assert score.ne_fnr == 1.0
    assert score.fuzzy_entities == ()  # a one-token entity needs an exact match
    assert (score.entity_errors, score.entity_tokens) == (1, 1)


def test_chinese_cer_and_fuzzy_entity():
    score = score_utterance("我在北京大学见到了张三丰。", "我在北京大学见了张三峰", ["北京大学", "张三丰"])
    assert (score.errors, score.reference_tokens) == (2, 12)  # 到 deleted, 丰 → 峰
    assert score.wer == pytest.approx(2 / 12)
    assert score.reference_entities == ("北 京 大 学", "张 三 丰")
    assert score.hypothesis_entities == ("北 京 大 学",)
    assert score.ne_fnr == pytest.approx(0.5)
    # 张三丰 has 3 tokens: one edit allowed, so the window 张 三 峰 matches and is reported as heard.
    assert score.fuzzy_entities == ("北 京 大 学", "张 三 峰")
    assert (score.entity_errors, score.entity_tokens) == (1, 7)
    assert score.ne_wer == pytest.approx(1 / 7)


def test_fuzzy_window_lengths_and_report():
    tokens = ["we", "met", "mister", "john", "ronald", "tolkien", "smith", "yesterday"]
    # 5 tokens → up to 2 edits; windows of 5, 4, 3, then 6, 7 tokens are tried at each start. At "john" the
    # 5-token window needs 3 edits, the 4-token "john ronald tolkien smith" 2 (insert reuel, smith → jr).
    entity = "john ronald reuel tolkien jr"
    assert match_entities_fuzzy(tokens, [entity]) == ["john ronald tolkien smith"]
    # A window that contains the entity reports the entity itself.
    assert match_entities_fuzzy(["a", "b", "c", "d"], ["b c d"]) == ["b c d"]
    # One- and two-token entities need exact matches.
    assert match_entities_fuzzy(["new", "yorke"], ["new york"]) == []


def test_overlapping_entities_all_count_and_hypothesis_hits_are_capped():
    assert match_entities(["new", "york", "is", "not", "york"], ["new york", "york"]) == ["new york", "york", "york"]
    score = score_utterance("new york is not york", "new york is not new york", ["New York", "York"])
    assert len(score.reference_entities) == 3
    assert score.hypothesis_entities == ("new york", "york", "york")  # the second "new york" exceeds its count
    assert score.ne_fnr == 0.0
    capped = score_utterance("york", "york york york", ["york"])
    assert capped.hypothesis_entities == ("york",)
    assert capped.errors == 2


def test_corpus_is_summed_not_averaged():
    first = score_utterance("hello", "goodbye")  # 1 / 1
    second = score_utterance(
        "one two three four five six seven eight nine", "one two three four five six seven eight nine"
    )
    corpus = score_corpus([first, second])
    assert corpus.wer == pytest.approx(1 / 10)  # the mean of per-utterance WERs would be 0.5
    a = score_utterance("alpha zorbak beta", "alpha zorbak beta", ["Zorbak"])
    b = score_utterance("x quill y quill", "x quill y quell", ["quill"])
    corpus = score_corpus([a, b])
    assert (corpus.entity_hits, corpus.entity_occurrences) == (2, 3)
    assert corpus.ne_fnr == pytest.approx(1 / 3)
    assert (corpus.entity_errors, corpus.entity_tokens) == (1, 3)


def test_defined_values_where_the_scorer_crashes():
    empty = score_utterance("", "hello world")
    assert (empty.errors, empty.reference_tokens, empty.wer) == (2, 0, 2.0)
    assert score_utterance("", "").wer == 0.0
    # "ann" occurs only inside "annual": no reference occurrence, nothing to score.
    inside = score_utterance("the annual report", "the annual report ann", ["Ann"])
    assert inside.reference_entities == ()
    assert inside.fuzzy_entities == ()
    assert (inside.ne_fnr, inside.ne_wer, inside.entity_tokens) == (0.0, 0.0, 0)
    absent = score_utterance("hello there", "hello there", ["Bob", "there"])
    assert absent.ignored_entities == ("Bob",)
    assert absent.reference_entities == ("there",)
    corpus = score_corpus([inside, score_utterance("meet ann", "meet anne", ["Ann"])])
    assert (corpus.entity_occurrences, corpus.entity_hits, corpus.ne_fnr) == (1, 0, 1.0)
