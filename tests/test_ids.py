from mediakeep.ids import looks_like_id, new_id


def test_ids_are_prefixed_lowercase_ulids_that_sort_by_time() -> None:
    ids = [new_id("med") for _ in range(50)]
    assert all(looks_like_id(i, "med") for i in ids)
    assert all(len(i) == 4 + 26 and i == i.lower() for i in ids)
    assert len(set(ids)) == 50
    assert sorted(ids) == sorted(ids, key=lambda i: i[4:14])  # the time part leads


def test_a_deployment_prefix_is_used() -> None:
    assert new_id("jan").startswith("jan_")
    assert not looks_like_id("med_01HQR8V9K2X3F4G5H6J7K8M9N0", "med")  # uppercase is not ours
