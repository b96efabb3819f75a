"""Published schemas the deployment files are checked against, fetched once from their packages.

- AsyncAPI 3.0.0: ``schemas/3.0.0-without-$id.json`` of the npm package ``@asyncapi/specs``.
- Compose: ``compose/config/compose_spec.json`` shipped in the PyPI wheel of ``docker-compose`` 1.29.2
  (only the schema file is taken; the package is not installed).
- Strimzi: the API model ``io.strimzi:api`` from Maven Central, which ``tests/java/ValidateStrimzi.java``
  binds the resources to.
- Code generation: ``@asyncapi/parser``, ``@asyncapi/modelina`` and ``typescript`` from the npm registry,
  installed (with the machine's Node.js and npm) into the cache for ``tests/codegen.mjs``; Jackson
  (``jackson-databind``, ``jackson-datatype-jsr310``) from Maven Central, to parse with the Java models.

``python tests/schemas.py`` fetches them into the cache (``make test`` does it first).
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from launchrelay.settings import default_cache_dir

ASYNCAPI_SPECS = "@asyncapi/specs@6.11.1"
COMPOSE_WHEEL = "docker-compose==1.29.2"
STRIMZI_API = "0.45.0"
#: what the AsyncAPI code-generation test runs (exact versions: a generator's output changes between them)
CODEGEN_PACKAGES = ("@asyncapi/parser@3.6.6", "@asyncapi/modelina@5.10.1", "typescript@5.9.3")
STRIMZI_POM = f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>launchrelay</groupId><artifactId>strimzi-check</artifactId><version>1</version><packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>io.strimzi</groupId><artifactId>api</artifactId><version>{STRIMZI_API}</version></dependency>
    <dependency>
      <groupId>com.fasterxml.jackson.dataformat</groupId><artifactId>jackson-dataformat-yaml</artifactId>
      <version>2.16.1</version>
    </dependency>
  </dependencies>
</project>
"""


#: Jackson, as a Java counterpart would parse messages with the models Modelina generates (its Jackson preset)
JACKSON = "2.17.1"
JACKSON_POM = f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>launchrelay</groupId><artifactId>jackson-parse</artifactId><version>1</version><packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>com.fasterxml.jackson.core</groupId><artifactId>jackson-databind</artifactId><version>{JACKSON}</version>
    </dependency>
    <dependency>
      <groupId>com.fasterxml.jackson.datatype</groupId><artifactId>jackson-datatype-jsr310</artifactId>
      <version>{JACKSON}</version>
    </dependency>
  </dependencies>
</project>
"""


def jackson_libs() -> Path:
    return cache() / f"jackson-{JACKSON}" / "libs"


def _maven_libs(libs: Path, pom_text: str, marker: str) -> None:
    if any(libs.glob(marker)):
        return
    pom = libs.parent / "pom.xml"
    libs.parent.mkdir(parents=True, exist_ok=True)
    pom.write_text(pom_text)
    subprocess.run(["mvn", "-B", "-q", "-f", str(pom), "dependency:copy-dependencies", "-DincludeScope=runtime",
                    f"-DoutputDirectory={libs}"], check=True, timeout=600)  # fmt: skip


def strimzi_libs() -> Path:
    return cache() / f"strimzi-{STRIMZI_API}" / "libs"


def codegen_dir() -> Path:
    """Where the code-generation packages are installed (``node_modules`` inside)."""
    return cache() / ("codegen-" + "-".join(p.rsplit("@", 1)[1] for p in CODEGEN_PACKAGES))


def fetch_codegen() -> Path:
    root = codegen_dir()
    if not (root / "node_modules" / ".bin" / "tsc").exists():
        root.mkdir(parents=True, exist_ok=True)
        (root / "package.json").write_text('{"name": "launchrelay-codegen", "private": true, "type": "module"}\n')
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", "--save-exact", *CODEGEN_PACKAGES],
                       cwd=root, check=True, timeout=600)  # fmt: skip
    return root


def cache() -> Path:
    return default_cache_dir() / "schemas"


def path(name: str) -> Path:
    """The cached schema file; a clear failure when it was never fetched."""
    p = cache() / name
    if not p.exists():
        raise FileNotFoundError(f"{p} is missing: run `python tests/schemas.py` (make test does)")
    return p


def fetch() -> None:
    cache().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        if not (cache() / "asyncapi-3.0.0.json").exists():
            out = subprocess.run(["npm", "pack", "--silent", ASYNCAPI_SPECS], cwd=tmp, capture_output=True,
                                 text=True, check=True, timeout=300)  # fmt: skip
            tgz = Path(tmp) / out.stdout.strip().splitlines()[-1]
            with tarfile.open(tgz) as tar:
                member = tar.extractfile("package/schemas/3.0.0-without-$id.json")
                assert member is not None
                (cache() / "asyncapi-3.0.0.json").write_bytes(member.read())
        if not (cache() / "compose-spec.json").exists():
            subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", tmp,
                            COMPOSE_WHEEL], check=True, timeout=300)  # fmt: skip
            wheel = next(Path(tmp).glob("docker_compose-*.whl"))
            with zipfile.ZipFile(io.BytesIO(wheel.read_bytes())) as zf:
                (cache() / "compose-spec.json").write_bytes(zf.read("compose/config/compose_spec.json"))
    _maven_libs(strimzi_libs(), STRIMZI_POM, "api-*.jar")
    _maven_libs(jackson_libs(), JACKSON_POM, "jackson-databind-*.jar")
    fetch_codegen()
    print(f"schemas in {cache()}: {', '.join(sorted(p.name for p in cache().iterdir()))}")


if __name__ == "__main__":
    fetch()
