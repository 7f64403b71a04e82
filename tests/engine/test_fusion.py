"""Hybrid fusion (``findling.engine.search.ranking.fuse``): what each method does with lanes whose scores say different things."""
import pytest

from findling.engine.search.ranking import NORM_DEPTH, Fusion, Ranked, fuse


def lane(*pairs):
    """``(file_id, score)`` pairs, best first, as a lane returns them."""
    return [Ranked(f, 100 + f, s) for f, s in pairs]


def order(ranked):
    return [r.file_id for r in ranked]


# BM25 is sure of file 1 (far ahead); MaxSim puts 2 just above 1.
SURE_KEYWORDS = {"bm25": lane((1, 30.0), (2, 6.0), (3, 5.5), (4, 5.0)),
                 "maxsim": lane((2, 0.80), (1, 0.79), (4, 0.60), (3, 0.59))}


def test_rank_fusion_is_blind_to_a_confident_lane():
    # ranks 1+2 against 2+1: a tie, broken by the lower file id; the confidence of BM25 plays no part
    ranked = fuse(SURE_KEYWORDS, Fusion("rrf", 0.5))
    assert order(ranked)[:2] == [1, 2]
    assert ranked[0].score == pytest.approx(ranked[1].score)


@pytest.mark.parametrize("method", ["relative", "zscore"])
def test_score_fusion_keeps_a_confident_lead(method):
    assert order(fuse(SURE_KEYWORDS, Fusion(method, 0.5)))[:2] == [1, 2]


def test_relative_fusion_margin():
    ranked = fuse(SURE_KEYWORDS, Fusion("relative", 0.5))
    assert order(ranked)[:2] == [1, 2]
    assert ranked[0].score - ranked[1].score > 0.4  # 1: 0.5 + 0.5 * 0.95; 2: 0.5 * 0.04 + 0.5


def test_relative_fusion_lets_a_confident_maxsim_win_over_keywords_that_are_all_alike():
    lanes = {"bm25": lane((5, 7.1), (6, 7.0), (7, 6.9)), "maxsim": lane((6, 0.9), (7, 0.3), (5, 0.29))}
    assert order(fuse(lanes, Fusion("relative", 0.5)))[0] == 6


@pytest.mark.parametrize("method", ["rrf", "relative", "zscore"])
def test_weight_one_or_zero_is_one_lane_alone(method):
    assert order(fuse(SURE_KEYWORDS, Fusion(method, 1.0))) == [2, 1, 4, 3]
    assert order(fuse(SURE_KEYWORDS, Fusion(method, 0.0))) == [1, 2, 3, 4]


def test_a_file_keeps_the_chunk_of_the_lane_that_ranked_it_highest():
    lanes = {"bm25": [Ranked(1, 11, 9.0), Ranked(2, 21, 1.0)], "maxsim": [Ranked(2, 22, 0.9), Ranked(1, 12, 0.1)]}
    chunks = {r.file_id: r.chunk_id for r in fuse(lanes, Fusion("relative", 0.5))}
    assert chunks == {1: 11, 2: 22}


def test_relative_values_do_not_depend_on_how_deep_the_lanes_go():
    deep = {"bm25": lane(*[(i, 100.0 - i) for i in range(200)]),
            "maxsim": lane(*[(199 - i, 30.0 - 0.1 * i) for i in range(200)])}
    shallow = {name: entries[:NORM_DEPTH] for name, entries in deep.items()}
    f = Fusion("relative", 0.5)
    top_deep, top_shallow = fuse(deep, f)[:10], fuse(shallow, f)[:10]
    assert order(top_deep) == order(top_shallow)
    assert [r.score for r in top_deep] == pytest.approx([r.score for r in top_shallow])


@pytest.mark.parametrize("method", ["rrf", "relative", "zscore"])
def test_deeper_lanes_only_add_files_after_the_ones_a_shallow_search_shows(method):
    # a file deep in both lanes (rank 60 and 70) would outscore files each lane ranks ~45th once both count
    bm25 = lane(*[(i, 100.0 - i) for i in range(60)], (500, 39.5), *[(i, 30.0 - i * 0.1) for i in range(60, 150)])
    maxsim = lane(*[(300 + i, 0.9 - 0.001 * i) for i in range(70)], (500, 0.829),
                  *[(400 + i, 0.82 - 0.001 * i) for i in range(80)])
    deep, f = {"bm25": bm25, "maxsim": maxsim}, Fusion(method, 0.5)
    shallow = {name: entries[:NORM_DEPTH] for name, entries in deep.items()}
    full, head = fuse(deep, f), fuse(shallow, f)
    assert order(full[:len(head)]) == order(head)
    assert 500 in order(full) and 500 not in order(head)
    assert len(set(order(full))) == len(full) == len({r.file_id for entries in deep.values() for r in entries})
    scores = [r.score for r in full]
    assert scores == sorted(scores, reverse=True)


def test_a_lane_with_equal_scores_gives_its_files_equal_value():
    lanes = {"bm25": lane((1, 2.0), (2, 2.0)), "maxsim": lane((2, 0.5), (1, 0.4))}
    assert order(fuse(lanes, Fusion("relative", 0.5))) == [2, 1]


@pytest.mark.parametrize("bad", [{"method": "mean"}, {"weight": -0.1}, {"weight": 1.01}])
def test_bad_fusion_settings_are_refused_with_the_reason(bad):
    with pytest.raises(ValueError, match="fusion"):
        Fusion(**bad)


def test_zscore_is_not_squashed_by_one_outlier_at_the_bottom():
    # one near-zero BM25 score at the end: min-max puts files 1-3 all near the top, the z-score keeps them apart
    bm25 = lane((1, 10.0), (2, 9.0), (3, 8.0), (4, 0.01))
    values = {r.file_id: r.score for r in fuse({"bm25": bm25}, Fusion("zscore", 0.0))}
    assert values[1] > values[2] > values[3] > values[4] >= 0.0
    # a file absent from a lane counts as the floor: below every file that lane returned
    lanes = {"bm25": bm25, "maxsim": lane((9, 0.5), (1, 0.4))}
    fused = {r.file_id: r.score for r in fuse(lanes, Fusion("zscore", 0.5))}
    assert fused[1] > fused[2] and fused[9] < fused[1]


def test_zscore_values_follow_the_formula():
    scores = [5.0, 3.0, 1.0]
    mean, spread = 3.0, (8 / 3) ** 0.5
    got = [r.score for r in fuse({"bm25": lane(*enumerate(scores))}, Fusion("zscore", 0.0))]
    assert got == pytest.approx([(s - mean) / spread + 3.0 for s in scores])


def test_relative_fusion_orders_the_tail_by_the_lanes_not_by_file_id():
    # 120 files, the same in both lanes; below the 50th neither lane's scale gives anything, yet the files
    # there must still come in the lanes' order (the higher ids first here), not tie at 0
    n = NORM_DEPTH + 70
    files = list(range(n, 0, -1))  # best first: file n, n-1, ...
    lanes = {"bm25": lane(*[(f, float(n - i)) for i, f in enumerate(files)]),
             "maxsim": lane(*[(f, 1.0 - i / n) for i, f in enumerate(files)])}
    ranked = fuse(lanes, Fusion("relative", 0.4))
    assert order(ranked) == files
    assert all(a.score >= b.score for a, b in zip(ranked, ranked[1:]))
    head = fuse({name: lst[:NORM_DEPTH] for name, lst in lanes.items()}, Fusion("relative", 0.4))
    assert order(ranked)[:NORM_DEPTH] == order(head)  # the head is what 50-deep lanes give
