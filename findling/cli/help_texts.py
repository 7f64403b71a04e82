"""What ``findling --help`` and every ``findling COMMAND --help`` say beyond the options: summaries and examples.

``COMMAND_HELP`` maps a command's words after ``findling`` to its one-line summary and its examples;
``describe_commands`` applies it to a built parser. docs/cli.md is generated from that parser, so a text
changed here changes the documentation with it.
"""
from __future__ import annotations

import argparse

COMMAND_HELP: dict[tuple[str, ...], tuple[str, str]] = {
    # command words after `findling` -> (one-line summary, examples); `findling CMD --help` shows both
    (): ("Offline semantic search over your own files.", """\
  findling folders add ~/Documents      # watch a folder
  findling index                        # index it
  findling search "read and write CSV files"
  findling status                       # counts, model, files that failed and why

Run `findling COMMAND --help` for a command's options and examples."""),
    ("folders",): ("Add, remove or list the folders Findling watches.", """\
  findling folders add ~/Documents ~/Notes
  findling folders list
  findling folders remove ~/Notes"""),
    ("folders", "add"): ("Watch one or more folders; `findling index` then indexes their files.", """\
  findling folders add ~/Documents
  findling folders add ~/Documents ~/Projects/notes"""),
    ("folders", "remove"): ("Stop watching folders: their files leave the index, nothing is deleted from disk.", """\
  findling folders remove ~/Projects/notes"""),
    ("folders", "list"): ("List the watched folders with how many of their files are indexed, failed or skipped.",
                          "  findling folders list"),
    ("index",): ("Bring the index up to date: index new and changed files, drop deleted ones.", """\
  findling index                        # with a progress bar: files/s, tokens/s, ETA
  findling index --quiet
  findling index --codec compact        # store the token vectors smaller
  findling index --rebuild              # after a "damaged index" message: move it aside, build anew
  findling index --reencode             # drop every vector and encode all files again"""),
    ("watch",): ("Index, then keep the index in step with the watched folders until Ctrl+C.", """\
  findling watch
  findling watch --background           # at the lowest CPU and I/O priority"""),
    ("search",): ("Search the index by meaning and by keywords; filters narrow the results.", """\
  findling search "read and write CSV files"
  findling search "tax letter" --ext pdf --after 2024-01-01 -k 5
  findling search 'invoice ext:pdf dir:~/Documents "due date"'   # filters and an exact phrase in the query
  findling search 'harbour budget from:ann subject:"quarterly review"'   # mail from Ann with that subject
  findling search "csv reader" --mode bm25 --json"""),
    ("status",): ("Show the index's size, model and counts, and every file that failed with its reason.",
                  "  findling status"),
    ("eval",): ("Measure retrieval quality and speed on a BEIR-format data set (nDCG@10, Recall@100, MRR@10).", """\
  findling eval ~/data/scifact
  findling eval ~/data/scifact --max-docs 1000 --max-queries 50 --json
  findling eval ~/data/scifact --keep   # then: findling eval ~/data/scifact --index PATH --codec compact"""),
    ("passkey",): ("Measure long-document retrieval with LongEmbed's Passkey task (nDCG@1 per length).", """\
  findling passkey
  findling passkey --lengths 256,1k,4k --docs 20 --queries 10 --json"""),
    ("exclude",): ("Keep files and folders out of the index by pattern (the app and the watcher use them too).", """\
  findling exclude list
  findling exclude add drafts '*.log' 'Archive/2019/**'
  findling exclude test ~/Documents/report.pdf
  findling exclude remove drafts"""),
    ("exclude", "add"): ("Exclude patterns: a name matches at any depth, a pattern with / starts at each watched "
                         "folder.", """\
  findling exclude add drafts
  findling exclude add '*.log' 'Archive/2019/**'
  findling index                        # drops the files they hide from the index (never from disk)"""),
    ("exclude", "remove"): ("Remove patterns of yours; `findling index` picks their files up again.", """\
  findling exclude remove drafts '*.log'"""),
    ("exclude", "test"): ("Say whether files would be indexed and, if not, why (exit status 1 if one would not).",
                          "  findling exclude test ~/Documents/report.pdf ~/Documents/drafts/plan.md"),
    ("exclude", "list"): ("List the patterns in effect: the built-in ones, then yours.", "  findling exclude list"),
    ("mcp",): ("Let an AI assistant search the index over the Model Context Protocol (read-only).", """\
  findling mcp                          # speaks MCP on standard input and output; an MCP client starts it
  findling --home ~/work-index mcp      # serve another index"""),
    ("model",): ("Show which model encodes and where it came from; download one, or switch to another.", """\
  findling model                        # name, source, folder, vector size
  findling model download mixedbread-ai/mxbai-edge-colbert-v0-17m   # the only command that uses the network
  findling model use ~/models/my-colbert   # re-encode the index with it, then switch
  findling model use --default"""),
}


def describe_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> None:
    """Give every command in ``COMMAND_HELP`` its summary (``description``, and its line in the parent's list
    when it has none) and its examples (``epilog``), shown as written. A description or epilog set where the
    command is defined is kept."""
    summary, examples = COMMAND_HELP.get(path, (None, None))
    if summary is not None:
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        parser.description = parser.description or summary
        parser.epilog = parser.epilog or f"examples:\n{examples}"
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            listed = {choice.dest: choice for choice in action._choices_actions}
            for name in action.choices:  # a command added without help= has no line in the list yet
                summary = COMMAND_HELP.get((*path, name), ("",))[0]
                if name not in listed and summary:
                    listed[name] = action._ChoicesPseudoAction(name, (), summary[0].lower() + summary[1:].rstrip("."))
            action._choices_actions[:] = [listed[name] for name in action.choices if name in listed]
            for name, child_parser in action.choices.items():
                describe_commands(child_parser, (*path, name))

