import threading

from findling.engine.index.indexer import Indexer
from findling.engine.search.searcher import Searcher
from findling.engine.store.store import Store
from findling.engine.index.watch_loop import run_watch
from tests.waiting import wait_for


def test_new_file_becomes_searchable_while_watching(config, fake_encoder, docs):
    with Store(config.db_path) as setup:
        setup.add_folder(docs)
    stop = threading.Event()
    reports = []

    def watch():
        with Store(config.db_path) as store:  # the loop's own connection, as in `findling watch`
            indexer = Indexer(store, fake_encoder, config=config)
            run_watch(indexer, config=config, report=reports.append, stop=stop,
                      on_watching=indexer.run_to_end)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    with Store(config.db_path) as reader:
        assert wait_for(lambda: reader.stats()["files"].get("indexed") == 4)
        searcher = Searcher(reader, fake_encoder)
        (docs / "zebra.md").write_text("Zebras graze on the savanna.")
        assert wait_for(lambda: any(h.path.name == "zebra.md" for h in searcher.search("zebras savanna", k=3)))
        (docs / "zebra.md").unlink()
        assert wait_for(lambda: not any(h.path.name == "zebra.md" for h in searcher.search("zebras savanna", k=3)))
        (docs / "Makefile").write_text("giraffe:\n\techo giraffes browse acacia\n")  # read by its name alone
        assert wait_for(lambda: any(h.path.name == "Makefile" for h in searcher.search("giraffes acacia", k=3)))
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert reports and reports[-1].phase == "done"
