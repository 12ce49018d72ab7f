"""Where each finding of issue 17's attack run is refused in the test suite.

Every finding has its hostile cases in the reliability corpus when they fit one request over
HTTP on both backends (`test_hostile_requests.py`, `test_hostile_sequences.py`,
`hostile_corpus.py`), and otherwise in its domain's tests, named here: open streams need a
real server (httpx's ASGI transport buffers whole answers), memory is measured on a real
`mediakeep serve`, speech recognition and start-up checks are not requests. The table in
docs/reliability.md ("Issue 17's findings") is checked against this map and the corpora by
`test_issue17_map.py`, so neither can drift from the other.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    severity: str
    summary: str
    corpus_files: tuple[str, ...] = ()  # ids of hostile_corpus.FILES
    tests: tuple[str, ...] = ()  # "tests/<path>.py::<test function>"


FINDINGS: dict[str, Finding] = {
    "H1": Finding(
        "high",
        "open event streams are never re-checked",
        tests=(
            "tests/events/test_stream_access.py::"
            "test_a_removed_members_sse_stream_closes_before_the_next_event",
            "tests/events/test_stream_access.py::"
            "test_a_revoked_keys_websocket_gets_closed_4401_and_no_event",
            "tests/events/test_stream_access.py::test_a_stream_ends_when_its_access_token_expires",
        ),
    ),
    "M1": Finding(
        "medium",
        "in-limit image bombs exhaust memory",
        corpus_files=("webp-9000-lossless-30-bytes",),
        tests=(
            "tests/live/test_image_bombs.py::"
            "test_two_concurrent_in_limit_png_bombs_grow_the_tree_by_at_most_512_mib",
            "tests/images/test_decode_gate.py::"
            "test_uploads_and_transforms_share_one_cap_and_answer_503_when_it_is_full",
        ),
    ),
    "M2": Finding(
        "medium",
        "no limit on JSON request bodies",
        tests=(
            "tests/security/test_body_limit_live.py::"
            "test_a_declared_100_mb_json_body_is_refused_before_it_is_read",
        ),
    ),
    "M3": Finding(
        "medium",
        "login brute force limited per address only",
        tests=(
            "tests/ratelimit/test_login_throttle.py::"
            "test_five_addresses_hammering_one_account_are_throttled",
            "tests/ratelimit/test_login_throttle.py::test_ipv6_clients_share_a_budget_per_64",
            "tests/ratelimit/test_login_throttle.py::test_sign_ups_are_limited_per_address",
        ),
    ),
    "L1": Finding("low", "NUL in text input is a 500 on PostgreSQL"),
    "L2": Finding("low", "media metadata has no depth or size limit"),
    "L3": Finding(
        "low",
        "links outlive access",
        tests=(
            "tests/security/test_link_keys.py::"
            "test_rotation_with_grace_keeps_old_links_until_the_grace_ends",
        ),
    ),
    "L4": Finding("low", "tokens and credentials are too easily used"),
    "L5": Finding(
        "low",
        "speech recognition skips the pinned demuxer",
        tests=(
            "tests/ai/test_asr_pinned_demuxer.py::"
            "test_speech_input_is_decoded_with_the_pinned_demuxer",
            "tests/ai/test_asr_pinned_demuxer.py::"
            "test_generate_caption_of_the_polyglot_recognises_the_decoded_audio",
        ),
    ),
    "L6": Finding(
        "low",
        "weak signing secrets are accepted",
        tests=(
            "tests/security/test_secrets.py::test_a_short_auth_secret_key_is_refused",
            "tests/security/test_secrets.py::test_serve_with_a_weak_secret_exits_2_with_one_line",
        ),
    ),
    "I": Finding(
        "info",
        "world-readable data directory; is_private changes nothing",
        tests=(
            "tests/security/test_file_modes.py::test_the_data_dir_and_its_files_are_private",
            "tests/security/test_file_modes.py::test_spool_files_in_flight_are_private",
            "tests/security/test_link_keys.py::"
            "test_private_media_links_live_at_most_the_private_ttl_and_are_not_shared_caches",
        ),
    ),
}
