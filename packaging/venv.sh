# shellcheck shell=bash
# Sourced (from the repository root) by run-app.sh, test.sh and build-app.sh.
# venv_install EXTRA...: make .venv with CPU torch and the project installed editable with [EXTRA,...].
TORCH_PIN="torch==2.13.0"
STAMP=.venv/.piddm-installed

# PyPI's Linux x86_64 torch wheels are CUDA builds that pull several GB of nvidia-* wheels. PyTorch's
# CPU index serves 2.13.0+cpu, which the `==2.13.0` pin matches and pip prefers (a local version sorts
# above the plain one). Use it only if it answers within 5 s: pip's timeouts and retries would stall
# for minutes on an unreachable index. PIDDM_TORCH_INDEX overrides the URL; empty means none.
torch_index() {
    local url=${PIDDM_TORCH_INDEX-https://download.pytorch.org/whl/cpu}
    [ -n "$url" ] || return 0
    if index_answers "$url"; then
        echo "$url"
    else
        echo "note: $url did not answer; torch comes from pip's own indexes" \
             "(on Linux x86_64 PyPI's is the CUDA build)" >&2
    fi
}

index_answers() {  # URL: its torch/ page answers 200 within 6 s (urlopen's timeout leaves out DNS)
    python3 - "$1" <<'EOF'
import sys, threading, urllib.request
ok = []
def probe():
    try:
        with urllib.request.urlopen(sys.argv[1].rstrip("/") + "/torch/", timeout=5) as r:
            ok.append(r.status == 200)
    except Exception:
        pass
t = threading.Thread(target=probe, daemon=True)
t.start()
t.join(6)
sys.exit(0 if ok == [True] else 1)
EOF
}

# pip runs only when the stamp does not vouch for this pyproject.toml, torch pin and every extra asked:
# a second start is then instant and works offline, and a changed pyproject.toml reinstalls.
# (The install is editable, so edits to the code itself need none.)
venv_ready() {  # KEY EXTRA...: the stamp's first line is KEY and each EXTRA has a line of its own
    [ -x .venv/bin/python ] && [ "$(head -n 1 "$STAMP" 2>/dev/null)" = "$1" ] || return 1
    shift
    local e
    for e in "$@"; do grep -qxF "$e" "$STAMP" || return 1; done
}

venv_install() {
    local key url extras
    key="$(cksum < pyproject.toml) $TORCH_PIN"
    venv_ready "$key" "$@" && return 0
    rm -f "$STAMP"  # an interrupted install must not leave a stamp that vouches for it
    # `|| return`: a caller may test this function, and bash ignores set -e inside a tested one.
    python3 -m venv .venv && .venv/bin/python -m pip install -q --upgrade pip || return
    url=$(torch_index)
    extras=$(IFS=,; echo "$*")
    .venv/bin/python -m pip install -q ${url:+--extra-index-url "$url"} "$TORCH_PIN" -e ".[$extras]" ||
        return
    printf '%s\n' "$key" "$@" > "$STAMP"
}
