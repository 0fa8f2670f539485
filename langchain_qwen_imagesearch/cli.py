"""``qwen-imagesearch``: index a catalog, serve it, search by image, or run the demo.

Exit codes: 0 success, 1 the search or server failed, 2 bad usage or configuration,
130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from langchain_qwen_imagesearch._version import __version__
from langchain_qwen_imagesearch.client import (
    AnswerDelta,
    ConfigurationError,
    ImageSearchClient,
    ImageSearchError,
    ImageSearchEvent,
    ImageSearchResult,
    SearchCompleted,
    SearchFinished,
    SearchStarted,
)

if TYPE_CHECKING:
    from langchain_qwen_imagesearch.server import AnswerWriter, Catalog

SERVER_EXTRA_HINT = (
    "the embedded server needs the server extra: pip install 'langchain-qwen-imagesearch[server]'"
)
HITS_SHOWN = 10
DEMO_QUERY = "Where does this picture come from? Find the original and similar photos."
DEMO_SIMILAR_QUERY = "Find images with a style similar to this one."


class UsageError(Exception):
    """Wrong command-line use; exits 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qwen-imagesearch",
        description="Search by image with Qwen, or offline on a local catalog.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    index = commands.add_parser("index", help="index a folder of images into a catalog")
    index.add_argument("source", type=Path, help="folder of images (searched recursively)")
    index.add_argument(
        "--catalog", required=True, help="catalog folder to write, or a postgresql:// URL"
    )
    index.add_argument("--manifest", type=Path, help="JSON {relative path: {title, url}}")
    index.add_argument("--quiet", action="store_true", help="no progress bar")

    serve = commands.add_parser("serve", help="serve a catalog over the Responses API")
    serve.add_argument(
        "--catalog", help="catalog folder or postgresql:// URL (default: the demo photos)"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--api-key", help="require this Bearer key (needed off loopback)")
    serve.add_argument(
        "--allow-private-urls",
        action="store_true",
        help="fetch image URLs from private addresses too (a trusted LAN); never loopback",
    )
    serve.add_argument(
        "--image-url-ttl",
        type=float,
        default=24 * 3600,
        metavar="SECONDS",
        help="how long the signed links to catalog images in hits stay valid (keyed server)",
    )
    serve.add_argument("--access-log", action="store_true", help="log each request to stderr")
    serve.add_argument(
        "--search-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="development: hold each search to at least this long, like the slow upstream",
    )
    _add_llm_options(serve)

    search = commands.add_parser("search", help="search by image (DashScope, or --local)")
    search.add_argument("image", nargs="+", help="image path or http(s)/data URL")
    search.add_argument("--query", help="text that rides along with the image")
    search.add_argument("--stream", action="store_true", help="show progress as it happens")
    search.add_argument("--json", action="store_true", help="print the result as JSON")
    search.add_argument("--model", help="model (default qwen3.7-plus)")
    search.add_argument("--region", help="DashScope region, e.g. cn-beijing, ap-southeast-1")
    search.add_argument("--base-url", help="Responses API base URL (overrides --region)")
    search.add_argument("--local", action="store_true", help="use the embedded offline server")
    search.add_argument("--catalog", help="with --local: catalog folder or postgresql:// URL")

    demo = commands.add_parser("demo", help="offline demo: find an edited photo's original")
    _add_llm_options(demo)
    return parser


def _add_llm_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--llm-base-url", help="OpenAI-compatible endpoint writing the answer")
    parser.add_argument("--llm-model", help="chat model at --llm-base-url")
    parser.add_argument("--llm-api-key", default=os.environ.get("LLM_API_KEY"))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "index":
            return run_index(args)
        if args.command == "serve":
            return run_serve(args)
        if args.command == "search":
            return run_search(args)
        return run_demo(args)
    except (UsageError, ConfigurationError) as error:
        print(f"qwen-imagesearch: {error}", file=sys.stderr)
        return 2
    except ImageSearchError as error:
        print(f"qwen-imagesearch: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _answer_writer(args: argparse.Namespace) -> AnswerWriter | None:
    if bool(args.llm_base_url) != bool(args.llm_model):
        raise UsageError("--llm-base-url and --llm-model go together")
    if not args.llm_base_url:
        return None
    from langchain_qwen_imagesearch.server import ChatModelAnswerWriter

    return ChatModelAnswerWriter(
        base_url=args.llm_base_url, model=args.llm_model, api_key=args.llm_api_key
    )


def run_index(args: argparse.Namespace) -> int:
    _require_server_extra()
    from langchain_qwen_imagesearch.server import CatalogError, build_catalog
    from langchain_qwen_imagesearch.server.store.postgres import printable_location

    if not args.source.is_dir():
        raise UsageError(f"{args.source} is not a folder of images")
    catalog = printable_location(args.catalog)

    def waiting() -> None:
        print(f"Another index run is writing {catalog}: waiting for it...", file=sys.stderr)

    try:
        report = build_catalog(
            args.source,
            args.catalog,
            manifest=args.manifest,
            progress=not args.quiet,
            on_wait=waiting,
        )
    except CatalogError as error:
        raise UsageError(str(error)) from None
    except OSError as error:
        raise UsageError(
            f"cannot write the catalog {catalog}: {error.strerror or error} (give a "
            "folder you may write, or a new one)"
        ) from None
    print(
        f"Indexed {report.total} images into {catalog} in {report.seconds:.1f} s: "
        f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
        f"{report.upgraded} given meaning descriptors, {report.removed} removed, "
        f"{len(report.skipped)} skipped."
    )
    for path, reason in report.skipped:
        print(f"  skipped {path}: {reason}", file=sys.stderr)
    for path, earlier in report.duplicates:
        print(f"  {path}: the same picture as {earlier}; both kept", file=sys.stderr)
    return 0


def _require_server_extra() -> None:
    try:
        import numpy  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as error:
        raise UsageError(f"{SERVER_EXTRA_HINT} ({error})") from None


def _open_catalog(directory: str | None) -> Catalog:
    _require_server_extra()
    from langchain_qwen_imagesearch.server import Catalog, CatalogError, open_demo_catalog

    if directory is None:
        return open_demo_catalog()
    try:
        return Catalog.open(directory)
    except CatalogError as error:
        raise UsageError(str(error)) from None


def run_serve(args: argparse.Namespace) -> int:
    _require_server_extra()
    from langchain_qwen_imagesearch.server import (
        API_PREFIXES,
        AddressPolicy,
        ServerConfigError,
        bound_socket,
        check_bind_address,
        serve,
    )
    from langchain_qwen_imagesearch.server.testing import slow_searches

    try:
        check_bind_address(args.host, args.api_key)
        sock = bound_socket(args.host, args.port)
    except ServerConfigError as error:
        raise UsageError(str(error)) from None
    catalog = _open_catalog(args.catalog)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"Serving {len(catalog)} catalog images.", flush=True)
    print(f"Base URL: http://{host}:{args.port}{API_PREFIXES[0]}", flush=True)
    serve(
        catalog,
        sock=sock,
        api_key=args.api_key,
        writer=_answer_writer(args),
        # A development aid only: plain serve runs the bare app.
        middleware=[lambda app: slow_searches(app, args.search_delay)] if args.search_delay else [],
        address_policy=AddressPolicy(allow_private=args.allow_private_urls),
        image_url_ttl=args.image_url_ttl,
        access_log=args.access_log,
    )
    return 0


@contextlib.contextmanager
def _local_client(
    catalog_dir: str | None, writer: AnswerWriter | None = None
) -> Iterator[ImageSearchClient]:
    catalog = _open_catalog(catalog_dir)
    from langchain_qwen_imagesearch.server import EmbeddedServer

    with EmbeddedServer(catalog, api_key="local", writer=writer) as server:
        yield ImageSearchClient(base_url=server.base_url, api_key="local")


def run_search(args: argparse.Namespace) -> int:
    if args.catalog and not args.local:
        raise UsageError("--catalog goes with --local")
    images: list[str] = list(args.image)
    with contextlib.ExitStack() as stack:
        if args.local:
            client = stack.enter_context(_local_client(args.catalog))
        else:
            client = ImageSearchClient(base_url=args.base_url, region=args.region, model=args.model)
        if args.stream:
            result = print_events(client.stream(images, query=args.query), quiet=args.json)
        else:
            result = client.search(images, query=args.query)
            if not args.json:
                print_result(result)
    if args.json:
        print(result.model_dump_json(indent=2))
    return 0


def print_events(
    events: Iterator[ImageSearchEvent], *, quiet: bool = False, out: TextIO | None = None
) -> ImageSearchResult:
    """Show a streamed search as it happens; returns the final result."""
    out = out or sys.stdout
    answering = False
    for event in events:
        if isinstance(event, SearchCompleted):
            if not quiet:
                print("\n", file=out)
                print_usage(event.result, out)
            return event.result
        if quiet:
            continue
        if isinstance(event, SearchStarted):
            print(f"[search] image {event.img_idx + 1}: searching...", file=out, flush=True)
        elif isinstance(event, SearchFinished):
            print(f"[search] image {event.img_idx + 1}: {len(event.hits)} hit(s)", file=out)
            print_hits(event.hits, out)
        elif isinstance(event, AnswerDelta):
            if not answering:
                print("\n[answer]", file=out)
                answering = True
            print(event.delta, end="", file=out, flush=True)
    raise ImageSearchError("the stream ended without a final result")


def print_hits(hits: Sequence[object], out: TextIO) -> None:
    for hit in list(hits)[:HITS_SHOWN]:
        print(f"  [{getattr(hit, 'index', '?')}] {getattr(hit, 'title', '')}", file=out)
        print(f"      {getattr(hit, 'url', '')}", file=out)
    if len(hits) > HITS_SHOWN:
        print(f"  ... {len(hits)} hits in total", file=out)


def print_usage(result: ImageSearchResult, out: TextIO) -> None:
    usage = result.usage
    print(
        f"[usage] input {usage.input_tokens}, output {usage.output_tokens}, "
        f"total {usage.total_tokens} tokens; image_search calls: {usage.image_search_calls}",
        file=out,
    )


def print_result(result: ImageSearchResult, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    print(f"[search] {len(result.hits)} hit(s)", file=out)
    print_hits(result.hits, out)
    print("\n[answer]", file=out)
    print(result.answer, file=out)
    print("", file=out)
    print_usage(result, out)


def run_demo(args: argparse.Namespace) -> int:
    _require_server_extra()
    from langchain_qwen_imagesearch.server.demo import demo_similar_style_query, edited_copy

    with tempfile.TemporaryDirectory() as workdir:
        print("Starting the embedded image search server on the bundled demo photos...", flush=True)
        with _local_client(None, _answer_writer(args)) as client:
            original, edited = edited_copy(Path(workdir))
            print(f"Query image: an edited copy of {original.name} (cropped, darkened, captioned)")
            print(f"Base URL: {client.base_url}\n", flush=True)
            result = print_events(client.stream(edited, query=DEMO_QUERY))
            top = result.hits[0].title if result.hits else "nothing"
            print(f"Top hit: {top}")
            portrait = demo_similar_style_query()
            print(f"\nQuery image: {portrait.name}, a portrait that is not in the catalog\n")
            result = print_events(client.stream(portrait, query=DEMO_SIMILAR_QUERY))
            top = result.hits[0].title if result.hits else "nothing"
            print(f"Most similar: {top}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
