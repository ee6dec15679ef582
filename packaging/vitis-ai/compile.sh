#!/usr/bin/env bash
# Compile the quantised U-YNet for the VCK5000 (DPUCVDX8H, 4 PE) with vai_c_xir, Vitis AI 3.0 docker.
#
#   compile.sh [QUANT_XMODEL] [OUT_DIR] [NAME]
#     QUANT_XMODEL  default work/quantize_result/UYNetForDPU_int.xmodel (from quantize.py test)
#     OUT_DIR       default work/compiled
#     NAME          default YNET  -> OUT_DIR/YNET.xmodel
#   ARCH=...        arch.json of another DPU configuration (default: VCK5000 4PE, which matches
#                   `source /workspace/board_setup/vck5000/setup.sh DPUCVDX8H_4pe_miscdwc`)
#   META=...        deepyn.json from quantize.py prepare (default work/deepyn.json); copied to
#                   OUT_DIR/NAME.json, the sidecar DeepYN reads for the model's name and calibration.
set -euo pipefail

QUANT="${1:-work/quantize_result/UYNetForDPU_int.xmodel}"
OUT="${2:-work/compiled}"
NAME="${3:-YNET}"
ARCH="${ARCH:-/opt/vitis_ai/compiler/arch/DPUCVDX8H/VCK50004PE/arch.json}"
META="${META:-$(dirname "$(dirname "$QUANT")")/deepyn.json}"

die() { echo "compile.sh: error: $*" >&2; exit 2; }

[ -f "$QUANT" ] || die "quantised xmodel not found: $QUANT (run quantize.py calib, then quantize.py test)"
[ -f "$ARCH" ] || die "arch.json not found: $ARCH (run inside the Vitis AI 3.0 docker, or set ARCH=...)"
command -v vai_c_xir >/dev/null 2>&1 || die "vai_c_xir not found (run inside the Vitis AI 3.0 docker after \`conda activate vitis-ai-pytorch\`)"

mkdir -p "$OUT"
vai_c_xir -x "$QUANT" -a "$ARCH" -o "$OUT" -n "$NAME"
[ -f "$OUT/$NAME.xmodel" ] || die "vai_c_xir did not write $OUT/$NAME.xmodel"
if [ -f "$META" ]; then
  cp "$META" "$OUT/$NAME.json"
  echo "sidecar: $OUT/$NAME.json"
else
  echo "compile.sh: warning: no $META: DeepYN will show the model as uncalibrated" >&2
fi
echo "compiled: $OUT/$NAME.xmodel"
echo "check it has exactly one DPU subgraph: deepyn models inspect $OUT/$NAME.xmodel"
