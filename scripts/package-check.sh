#!/usr/bin/env bash
# Packs every package of the repository into a temporary folder, then does what a user outside the repository does:
#   - builds and runs each sample (samples/*) from a copy outside the repository, restored from those packages only
#     for the MoCoV3 packages (nuget.org, or the machine's NuGet source, for the rest);
#   - publishes EmbedApp for linux-x64 (framework-dependent) and reports its size and any libtorch file in it;
#   - installs the `mocov3` tool into a tool path and runs `mocov3 presets` and a 2-step pretrain with it.
# Usage: scripts/package-check.sh [WORK_FOLDER]   (default: a new temporary folder). Prints `package-check: passed` last.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d /tmp/mocov3-package-check.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
packages="$work/packages"
step() { echo "== $*"; }
fail() { echo "package-check: FAILED: $*" >&2; exit 1; }

version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' "$repo/Directory.Build.props" | head -1)
step "pack $version (repository build outputs untouched: --artifacts-path)"
dotnet pack "$repo/MoCoV3.sln" -c Release -o "$packages" --artifacts-path "$work/artifacts" -v q -nologo -p:CI=true
for id in MoCoV3.Inference MoCoV3.Inference.ML MoCoV3.Toolkit MoCoV3.Export MoCoV3.Eval mocov3; do
  [ -f "$packages/$id.$version.nupkg" ] || fail "$id.$version.nupkg was not packed"
done
ls -l "$packages" | awk 'NR > 1 { printf "   %8.1f MB  %s\n", $5 / 1e6, $9 }'

# The packages' own checks: TorchSharp only (no libtorch backend) in the libraries; the GLIBCXX fix as buildTransitive;
# the presets inside the toolkit; licence, readme and XML docs in each.
# (Listings are read whole before grep: with pipefail, `grep -q` closing the pipe early would fail the check.)
nuspec() { unzip -p "$packages/$1.$version.nupkg" "$1.nuspec"; }
files() { unzip -Z1 "$packages/$1.$version.nupkg"; }
for id in MoCoV3.Inference MoCoV3.Inference.ML MoCoV3.Toolkit MoCoV3.Export MoCoV3.Eval; do
  spec=$(nuspec "$id"); list=$(files "$id")
  grep -q '<dependency id="libtorch' <<<"$spec" && fail "$id depends on a libtorch backend"
  grep -q '<license type="expression">MIT</license>' <<<"$spec" || fail "$id has no MIT licence expression"
  grep -q '<readme>README.md</readme>' <<<"$spec" || fail "$id has no readme"
  grep -qx "lib/net10.0/$id.xml" <<<"$list" || fail "$id has no XML docs"
done
for id in MoCoV3.Inference MoCoV3.Inference.ML; do
  grep -q '<dependency id="TorchSharp' <<<"$(nuspec "$id")" && fail "$id depends on TorchSharp"
done
grep -qx 'buildTransitive/MoCoV3.Toolkit.targets' <<<"$(files MoCoV3.Toolkit)" || fail "no buildTransitive targets in MoCoV3.Toolkit"
unzip -p "$packages/MoCoV3.Toolkit.$version.nupkg" lib/net10.0/MoCoV3.Toolkit.dll > "$work/MoCoV3.Toolkit.dll"
grep -aq 'presets/vit-small.json' "$work/MoCoV3.Toolkit.dll" || fail "the presets are not embedded in MoCoV3.Toolkit.dll"
grep -q 'DotnetToolSettings.xml' <<<"$(files mocov3)" || fail "mocov3 is not a .NET tool package"

# Restore from the packed folder and the machine's usual sources (this nuget.config, in the folder above the copies,
# adds to the user's), into a package cache of this run's own (the global one serves as a read-only fallback, so an
# older pack of the same version is never picked up).
global=$(dotnet nuget locals global-packages --list | sed 's/^global-packages: //')
cat > "$work/nuget.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <config><add key="globalPackagesFolder" value="$work/nuget-cache" /></config>
  <packageSources><add key="mocov3-packed" value="$packages" /></packageSources>
  <fallbackPackageFolders><add key="machine" value="$global" /></fallbackPackageFolders>
</configuration>
XML
export NUGET_PACKAGES="$work/nuget-cache"

step "tool: install mocov3 into a tool path"
(cd "$work" && dotnet tool install mocov3 --version "$version" --tool-path "$work/tool" >/dev/null)
mocov3="$work/tool/mocov3"
"$mocov3" presets > "$work/presets.txt"
head -3 "$work/presets.txt"
grep -q '^vit-small' "$work/presets.txt" || fail "mocov3 presets does not list vit-small"
step "tool: a 2-step pretrain"
"$mocov3" pretrain --preset vit-tiny-fmnist --max-steps 2 --batch 16 --limit 64 --out "$work/run" | tail -2
[ -f "$work/run/checkpoint.ckpt" ] || fail "the tool's pretrain wrote no checkpoint"
"$mocov3" export --checkpoint "$work/run/checkpoint.ckpt" --out "$work/encoder.onnx" --verify | tail -1
"$mocov3" convert --checkpoint "$work/run/checkpoint.ckpt" --to official --out "$work/official.pth.tar" | tail -1
python3 "$repo/scripts/fmnist-images.py" "$work/images" 12
"$mocov3" probe --encoder "$work/encoder.onnx" --limit 500 --out "$work/probe" | grep '^top1='

sample() {
  local name=$1; shift
  step "sample $name (a copy outside the repository)"
  rm -rf "$work/samples/$name" && mkdir -p "$work/samples" && cp -r "$repo/samples/$name" "$work/samples/$name"
  (cd "$work/samples/$name" && dotnet restore -v q >/dev/null &&
     dotnet build -c Release --no-restore -v q -nologo >/dev/null &&
     dotnet run -c Release --no-build -- "$@") | tee "$work/$name.txt"
}
sample EmbedApp "$work/encoder.onnx" "$work/images"
[ "$(grep -cP '^[1-5]\t' "$work/EmbedApp.txt" || true)" = 5 ] || fail "EmbedApp did not list 5 similar images"
sample MLNetPipeline "$work/encoder.onnx" "$work/images" "$work/model.zip" sdca
grep -q 'reloaded model agrees on 5 of 5' "$work/MLNetPipeline.txt" || fail "MLNetPipeline: the reloaded model disagrees"
shoes=$(ls "$work/images/Sneaker" | head -3 | sed "s|^|$work/images/Sneaker/|")
# shellcheck disable=SC2086
sample ProbeApp "$work/probe/probe.zip" $shoes
[ "$(grep -c . "$work/ProbeApp.txt" || true)" = 3 ] || fail "ProbeApp did not classify 3 images"
sample ExportFromCSharp "$work/official.pth.tar" "$work/from-official.onnx" vit-tiny-fmnist
grep -q -- '-> passed' "$work/ExportFromCSharp.txt" || fail "ExportFromCSharp: the export did not verify"

step "EmbedApp: publish -r linux-x64 (framework-dependent)"
(cd "$work/samples/EmbedApp" && dotnet restore -r linux-x64 -v q >/dev/null &&
   dotnet publish -c Release -r linux-x64 --self-contained false --no-restore -o "$work/embedapp-publish" -v q -nologo >/dev/null)
size=$(du -sb "$work/embedapp-publish" | cut -f1)
echo "EMBEDAPP_PUBLISH_BYTES=$size"
grep -i torch <<<"$(ls "$work/embedapp-publish")" && fail "EmbedApp's publish folder holds a libtorch/TorchSharp file"
[ "$size" -le $((60 * 1024 * 1024)) ] || fail "EmbedApp's publish folder is $size bytes, over 60 MiB"
echo "package-check: passed ($work)"
