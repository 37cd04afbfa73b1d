"""The model call of the fake phone's app (qa-core on the JVM, tests/fake_adb.py): load a .pte with
ExecuTorch's Python runtime, print `ready`, then answer each JSON line {"inputs": [[ids], ...]}
with {"start": [...], "end": [...]} (the first two outputs, flattened). See FakePhoneMain.kt."""

import json
import sys


def main() -> None:
    import torch
    from executorch.runtime import Runtime

    method = Runtime.get().load_program(sys.argv[-1]).load_method("forward")
    print("ready", flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        out = method.execute([torch.tensor([ids], dtype=torch.long) for ids in req["inputs"]])
        print(json.dumps({"start": out[0].reshape(-1).tolist(), "end": out[1].reshape(-1).tolist()}), flush=True)


if __name__ == "__main__":
    main()
