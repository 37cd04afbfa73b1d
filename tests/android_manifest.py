"""The app's XML as the Android Gradle plugin reads it, without the SDK.

`strict_parse` runs the JDK's own XML parser (tests/android_tools/StrictXml.java, javax.xml: what
AGP's manifest merger and resource compiler parse with) over files; `merge` then merges the main
manifest with a build type's overlay by the manifest merger's rules (elements keyed by tag and
android:name, the build type's manifest first; an attribute set to two different values is a
conflict unless tools:replace names it; `${placeholder}` values substituted from the build's
placeholders, an unknown one is an error; the same element twice in one file is an error) and
`problems` checks the merged manifest as AGP and the platform would at targetSdk >= 31 (every
component with an intent filter says android:exported) plus this app's own rules (no backup,
no permission requests, every exported entry point but the launcher guarded by a permission a
normal app cannot hold, every name a class of the app, every resource reference defined)."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "android_demo" / "app"
STRICT_XML = ROOT / "tests" / "android_tools" / "StrictXml.java"
A = "{http://schemas.android.com/apk/res/android}"
TOOLS = "{http://schemas.android.com/tools}"
COMPONENTS = ("activity", "activity-alias", "service", "receiver", "provider")
# Held by the shell user (adb shell am start) and by the platform, never by a third-party app
# from the store: protectionLevel signature|privileged|development (frameworks/base core/res manifest).
GUARDS = {"android.permission.DUMP"}
SINGLE = ("application", "uses-sdk")  # one per manifest: merged by tag
PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


def app_xml_files(app: Path = APP) -> list[Path]:
    return sorted(p for p in (app / "src").rglob("*.xml"))


def strict_parse(files: list[Path]) -> dict[Path, str | None]:
    """{file: None when well-formed, else 'LINE:COL: message'} from the JDK's parser."""
    if not shutil.which("java"):
        raise FileNotFoundError("no java (apt install default-jdk-headless)")
    proc = subprocess.run(["java", str(STRICT_XML), *map(str, files)], capture_output=True, text=True, timeout=120)
    out: dict[Path, str | None] = {}
    for line in proc.stdout.splitlines():
        status, _, rest = line.partition(" ")
        if status == "OK":
            out[Path(rest)] = None
        elif status == "ERROR":
            path, _, msg = rest.partition(":")
            out[Path(path)] = msg
    missing = [f for f in files if Path(f) not in out]
    if missing:
        raise RuntimeError(f"StrictXml gave no verdict on {missing}: {proc.stdout}{proc.stderr}")
    return out


@dataclass
class Merged:
    root: ET.Element
    errors: list[str] = field(default_factory=list)

    def components(self) -> list[ET.Element]:
        app = self.root.find("application")
        return [e for e in (app if app is not None else []) if e.tag in COMPONENTS]


def _key(e: ET.Element, namespace: str) -> str:
    name = e.get(f"{A}name")
    if name is None:
        return e.tag
    return f"{e.tag}#{namespace + name if name.startswith('.') else name}"


def _merge_into(low: ET.Element, high: ET.Element, where: str, errors: list[str], namespace: str) -> None:
    """Merge the higher-priority element [high] into [low] (AGP: the build type overrides main)."""
    replace = {a.strip() for a in high.get(f"{TOOLS}replace", "").split(",") if a.strip()}
    for attr, value in high.attrib.items():
        if attr.startswith(TOOLS):
            continue
        old = low.get(attr)
        short = attr.replace(A, "android:")
        if old is not None and old != value and short not in replace:
            errors.append(f"Attribute {_key(high, namespace)}@{short} value=({value}) from {where} is also present "
                          f"with value=({old}): add tools:replace=\"{short}\" to override")
        low.set(attr, value)
    seen = {_key(c, namespace): c for c in low if c.get(f"{A}name") is not None or c.tag in SINGLE}
    for child in high:
        k = _key(child, namespace)
        if k in seen and (child.get(f"{A}name") is not None or child.tag in SINGLE):
            _merge_into(seen[k], child, where, errors, namespace)
        else:
            low.append(child)


def _duplicates(root: ET.Element, where: str, namespace: str) -> list[str]:
    out = []
    for parent in root.iter():
        keys = [_key(c, namespace) for c in parent if c.get(f"{A}name") is not None and c.tag != "data"]
        out += [f"{where}: element {k} is duplicated" for k in sorted({k for k in keys if keys.count(k) > 1})]
    return out


def merge(main: Path, overlays: list[Path], namespace: str, placeholders: dict[str, str]) -> Merged:
    """main + the build type's manifests, as AGP's merger would merge them (no libraries: the
    ExecuTorch and ONNX Runtime AARs declare no components)."""
    errors: list[str] = []
    base = ET.parse(main).getroot()
    errors += _duplicates(base, main.name, namespace)
    for o in overlays:
        over = ET.parse(o).getroot()
        where = f"src/{o.parent.name}/{o.name}"
        errors += _duplicates(over, where, namespace)
        _merge_into(base, over, where, errors, namespace)
    values = {"applicationId": namespace, "packageName": namespace, **placeholders}
    for e in base.iter():
        for attr, value in e.attrib.items():
            for name in PLACEHOLDER.findall(value):
                if name not in values:
                    errors.append(f"{_key(e, namespace)}@{attr.replace(A, 'android:')} needs placeholder "
                                  f"'{name}', which the build does not provide")
                else:
                    e.set(attr, value.replace("${" + name + "}", values[name]))
    return Merged(base, errors)


def _resources(app: Path) -> dict[str, set[str]]:
    res: dict[str, set[str]] = {"string": set(), "xml": set(), "style": set()}
    for f in (app / "src").glob("*/res/values*/*.xml"):
        for e in ET.parse(f).getroot():
            if e.tag in res and e.get("name"):
                res[e.tag].add(e.get("name"))
    for f in (app / "src").glob("*/res/xml/*.xml"):
        res["xml"].add(f.stem)
    return res


def _app_classes(app: Path) -> set[str]:
    out = set()
    for kt in (app / "src").rglob("*.kt"):
        text = kt.read_text()
        pkg = re.search(r"^package ([\w.]+)", text, flags=re.M)
        for name in re.findall(r"^(?:[a-z]+ )*class (\w+)", text, flags=re.M):
            out.add(f"{pkg.group(1)}.{name}" if pkg else name)
    return out


def problems(merged: Merged, namespace: str, target_sdk: int, app: Path = APP) -> list[str]:
    """What AGP, the package installer or this app's rules refuse in a merged manifest."""
    out = list(merged.errors)
    application = merged.root.find("application")
    if application is None:
        return out + ["no <application>"]
    if application.get(f"{A}allowBackup") != "false":
        out.append("application: android:allowBackup must be \"false\" (bundles and benchmark records stay off backups)")
    res = _resources(app)
    classes = _app_classes(app)
    for e in merged.root.iter():
        for attr, value in e.attrib.items():
            m = re.fullmatch(r"@(string|xml|style)/(\w+)", value)
            if m and m.group(2) not in res[m.group(1)]:
                out.append(f"{_key(e, namespace)}@{attr.replace(A, 'android:')}: {value} is not defined in res/")
    perms = [p.get(f"{A}name") for p in merged.root.findall("uses-permission")]
    if perms:
        out.append(f"the app asks for permissions it does not need: {perms}")
    for c in merged.components():
        name = c.get(f"{A}name", "")
        full = namespace + name if name.startswith(".") else name
        where = f"{c.tag}#{full}"
        if full not in classes:
            out.append(f"{where}: no such class in the app's sources")
        has_filter = c.find("intent-filter") is not None
        exported = c.get(f"{A}exported")
        if has_filter and target_sdk >= 31 and exported is None:
            out.append(f"{where}: android:exported needs to be explicitly specified (targetSdk {target_sdk}, "
                       "the component has an intent filter)")
        launcher = any(cat.get(f"{A}name") == "android.intent.category.LAUNCHER" for cat in c.iter("category"))
        if (exported == "true" or (exported is None and has_filter)) and not launcher:
            guard = c.get(f"{A}permission") or application.get(f"{A}permission")
            if guard not in GUARDS:
                out.append(f"{where} is exported without a permission a normal app cannot hold "
                           f"(android:permission one of {sorted(GUARDS)}; got {guard})")
    return out
