"""Reading the tables a VQA data set comes in: JSON, JSONL, CSV/TSV, Parquet, Arrow, save_to_disk, imagefolder.

Used by ``llava.data.vqa`` (and the OK-VQA export reader); see docs/CUSTOM_DATA.md
for the accepted layouts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llava.data.conversion import ConversionError, EmbeddedSource, list_ids
from llava.utils import JsonFileError, load_json_file

# Rows read per batch when streaming an embedded image column.
_IMAGE_BATCH_ROWS = 64

# File suffix -> the reader of that format.
TABLE_SUFFIXES = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".arrow": "arrow",
}


def is_parquet(path: Path) -> bool:
    """Parquet by extension, else by its magic bytes."""
    if path.suffix == ".parquet":
        return True
    if path.suffix == ".arrow":
        return False
    with open(path, "rb") as stream:
        return stream.read(4) == b"PAR1"


def open_arrow(path: Path):
    """An Arrow IPC reader for a file in the file format or the stream format (datasets cache)."""
    import pyarrow as pa

    try:
        return pa.ipc.open_file(pa.memory_map(str(path)))
    except pa.ArrowInvalid:
        return pa.ipc.open_stream(pa.memory_map(str(path)))


def arrow_batches(path: Path, columns: Sequence[str]) -> Iterator[Any]:
    """Record batches of an Arrow file restricted to ``columns`` (memory-mapped, no copy)."""
    reader = open_arrow(path)
    if hasattr(reader, "num_record_batches"):
        batches: Any = (reader.get_batch(i) for i in range(reader.num_record_batches))
    else:
        batches = reader
    for batch in batches:
        yield batch.select(list(columns))


def read_schema_names(path: Path) -> list[str]:
    """Column names of a Parquet or Arrow file."""
    import pyarrow.parquet as pq

    if is_parquet(path):
        return list(pq.read_schema(path).names)
    return list(open_arrow(path).schema.names)


def read_arrow_columns(path: Path, columns: Sequence[str]) -> dict[str, list]:
    """Selected columns of a Parquet or Arrow file as Python lists."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if is_parquet(path):
        table = pq.read_table(path, columns=list(columns))
    else:
        batches = list(arrow_batches(path, columns))
        table = pa.Table.from_batches(batches) if batches else pa.table({c: [] for c in columns})
    return {name: table.column(name).to_pylist() for name in columns}


def arrow_column_type(path: Path, column: str) -> Any:
    import pyarrow.parquet as pq

    schema = pq.read_schema(path) if is_parquet(path) else open_arrow(path).schema
    return schema.field(column).type


@dataclass
class Table:
    """One input file's rows: column name -> values, and how to name a row in an error."""

    path: Path
    names: list[str]
    read: Callable[[list[str]], dict[str, list]]
    """Reads the given columns as Python lists (the image column of an embedded table excluded)."""
    num_rows: Callable[[], int]
    image_root: Path
    where: Callable[[int], str]
    """Names a row (0-based) the way the file's reader sees it: 'line 5', 'row 5', 'item 5', 'index 5'."""
    arrow: bool = False


def _json_table(path: Path, rows: list[Any], where: Callable[[int], str], image_root: Path) -> Table:
    names: dict[str, None] = {}
    problems = []
    for index, row in enumerate(rows):
        if isinstance(row, dict):
            names.update(dict.fromkeys(row))
        else:
            problems.append(f"{where(index)} is not an object")
    if problems:
        raise ConversionError(f"{path}: every entry must be a JSON object: " + list_ids(problems))

    def read(columns: list[str]) -> dict[str, list]:
        return {name: [row.get(name) for row in rows] for name in columns}

    return Table(path, list(names), read, lambda: len(rows), image_root, where)


def _read_json(path: Path, image_root: Path) -> Table:
    try:
        data = load_json_file(path)
    except OSError as error:
        raise ConversionError(f"cannot read {path}: {error}") from error
    except JsonFileError as error:
        raise ConversionError(str(error)) from None
    if not isinstance(data, list):
        raise ConversionError(f"{path} is not a JSON list of objects (use .jsonl for one object per line)")
    return _json_table(path, data, lambda index: f"item {index + 1}", image_root)


def _read_jsonl(path: Path, image_root: Path) -> Table:
    rows, bad, numbers = [], [], []
    try:
        with open(path, encoding="utf-8") as stream:
            for number, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                numbers.append(number)
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as error:
                    bad.append(f"line {number}: {error}")
                except RecursionError:
                    bad.append(f"line {number}: nested too deeply")
    except OSError as error:
        raise ConversionError(f"cannot read {path}: {error}") from error
    except UnicodeDecodeError as error:
        raise ConversionError(f"{path}: not UTF-8 text (byte {error.start})") from None
    if bad:
        raise ConversionError(f"{path}: lines that are not JSON: " + list_ids(bad))
    return _json_table(path, rows, lambda index: f"line {numbers[index]}", image_root)


def _read_csv(path: Path, delimiter: str, image_root: Path) -> Table:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    parse = pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True)
    # pyarrow's 1 MB blocks fail on a longer field ("straddles two block boundaries"): the whole
    # file is read into memory anyway, so one block as large as the file costs nothing more.
    size = path.stat().st_size if path.exists() else 0
    read = pcsv.ReadOptions(block_size=min(max(1 << 20, size + 1), (1 << 31) - 1))
    try:
        with pcsv.open_csv(path, read_options=read, parse_options=parse) as reader:
            names = list(reader.schema.names)
        convert = pcsv.ConvertOptions(column_types={name: pa.string() for name in names}, strings_can_be_null=False)
        table = pcsv.read_csv(path, read_options=read, parse_options=parse, convert_options=convert)
    except (OSError, pa.ArrowInvalid) as error:
        raise ConversionError(f"cannot read {path} as {'TSV' if delimiter == chr(9) else 'CSV'}: {error}") from error

    def read(columns: list[str]) -> dict[str, list]:
        return {name: table.column(name).to_pylist() for name in columns}

    # Spreadsheet numbering: the header is row 1, so the first data row is row 2.
    return Table(path, names, read, lambda: table.num_rows, image_root, lambda index: f"row {index + 2}")


def _read_arrow_file(path: Path, image_root: Path) -> Table:
    import pyarrow as pa

    try:
        names = read_schema_names(path)
    except (OSError, pa.ArrowInvalid) as error:
        raise ConversionError(f"cannot read {path}: {error}") from error

    def count() -> int:
        import pyarrow.parquet as pq

        if is_parquet(path):
            return pq.ParquetFile(path).metadata.num_rows
        return sum(batch.num_rows for batch in arrow_batches(path, []))

    return Table(
        path,
        names,
        lambda columns: read_arrow_columns(path, columns),
        count,
        image_root,
        lambda index: f"index {index}",
        arrow=True,
    )


def struct_has_bytes(path: Path, column: str, column_type: Any) -> bool:
    """Whether any row of a struct image column carries bytes (read one batch at a time)."""
    if column_type.get_field_index("bytes") < 0:
        return False
    source = EmbeddedSource(path, column, path.parent)
    return any(array.field("bytes").null_count < len(array) for array in image_batches(source))


def read_tables(entry: str | Path, image_root: str | Path | None) -> list[Table]:
    """The tables one --input entry stands for (a file, or a folder in one of the known layouts)."""
    path = Path(entry)
    root = Path(image_root) if image_root else None
    if path.is_dir():
        if (path / "dataset_dict.json").is_file():
            splits = json.loads((path / "dataset_dict.json").read_text(encoding="utf-8")).get("splits", [])
            hint = " ".join(f"{'val' if s in ('validation', 'test') else s}={path / s}" for s in splits)
            raise ConversionError(
                f"{path} is a datasets DatasetDict with splits {splits}: give them with --splits {hint}"
            )
        if (path / "state.json").is_file():
            state = json.loads((path / "state.json").read_text(encoding="utf-8"))
            files = [path / item["filename"] for item in state.get("_data_files", [])]
            return [_read_arrow_file(file, root or path) for file in files]
        for name in ("metadata.jsonl", "metadata.csv"):
            if (path / name).is_file():  # the Hugging Face imagefolder convention
                return read_tables(path / name, root or path)
        files = sorted(p for p in path.iterdir() if p.suffix in TABLE_SUFFIXES)
        if not files:
            raise ConversionError(
                f"{path} is a folder without metadata.jsonl/metadata.csv, state.json or data files "
                f"({', '.join(TABLE_SUFFIXES)})"
            )
        return [table for file in files for table in read_tables(file, root)]
    if not path.is_file():
        raise ConversionError(f"missing input {path}")
    kind = TABLE_SUFFIXES.get(path.suffix.lower())
    base = root or path.parent
    if kind == "json":
        return [_read_json(path, base)]
    if kind == "jsonl":
        return [_read_jsonl(path, base)]
    if kind in ("csv", "tsv"):
        return [_read_csv(path, "\t" if kind == "tsv" else ",", base)]
    if kind in ("parquet", "arrow") or is_parquet(path):
        return [_read_arrow_file(path, base)]
    raise ConversionError(f"{path}: unknown input format; use one of {', '.join(TABLE_SUFFIXES)} or a folder")


def image_batches(source: EmbeddedSource) -> Iterator[Any]:
    """The image column of a file, batch by batch (bytes stay in Arrow until asked for)."""
    import pyarrow.parquet as pq

    if is_parquet(source.path):
        parquet = pq.ParquetFile(source.path)
        for batch in parquet.iter_batches(batch_size=_IMAGE_BATCH_ROWS, columns=[source.column]):
            yield batch.column(0)
    else:
        for batch in arrow_batches(source.path, [source.column]):
            yield batch.column(0)


def table_files(entries: Sequence[str | Path]) -> list[Path]:
    """Files as given; a folder stands for the parquet and arrow files directly inside it."""
    files: list[Path] = []
    for entry in entries:
        path = Path(entry)
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in (".parquet", ".arrow")))
        else:
            files.append(path)
    return files


def image_column_paths(path: Path) -> list[Any] | None:
    """The ``path`` field of the struct image column (without reading the bytes), or None."""
    import pyarrow as pa

    column_type = arrow_column_type(path, "image")
    if not pa.types.is_struct(column_type) or column_type.get_field_index("path") < 0:
        return None
    if is_parquet(path):
        import pyarrow.parquet as pq

        return pq.read_table(path, columns=["image.path"]).column(0).to_pylist()
    return [value for batch in arrow_batches(path, ["image"]) for value in batch.column(0).field("path").to_pylist()]
