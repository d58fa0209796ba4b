#!/bin/sh
# Regenerates the pkg/data test fixtures in this folder from real tools.
# Needs (Debian): espeak-ng sox imagemagick ffmpeg python3, and python3-statsmodels's
# macrodata.csv (only the .deb is needed: `apt-get download python3-statsmodels` and
# `dpkg-deb -x` it; pass the CSV path as $MACRODATA) and Fashion-MNIST
# (dataset-fashion-mnist, /usr/share/datasets/fashion-mnist).
# Outputs are deterministic for a given tool version (sox dithering is off: -D).
# The tests assert values read from these files; regenerate only on purpose.
set -eu
cd "$(dirname "$0")"
CONVERT=${CONVERT:-/usr/bin/convert} # the real ImageMagick, not a stand-in on PATH
MACRODATA=${MACRODATA:-/usr/lib/python3/dist-packages/statsmodels/datasets/macrodata/macrodata.csv}
FASHION=${FASHION:-/usr/share/datasets/fashion-mnist}
PY=${PY:-/usr/bin/python3}

mkdir -p image audio video/frames sensor text manifest idx
rm -f image/* audio/* video/frames/* video/*.* sensor/* manifest/* idx/*

# ---- images: hand-written pixel values (PGM/PPM text), converted by ImageMagick
printf 'P2\n4 3\n255\n0 32 64 96\n128 160 192 224\n255 17 5 250\n' >image/gray4x3.pgm
printf 'P3\n4 3\n255\n255 0 0  0 255 0  0 0 255  255 255 255\n0 0 0  10 20 30  200 100 50  128 128 128\n1 2 3  250 251 252  90 0 180  60 120 240\n' >image/rgb4x3.ppm
"$CONVERT" image/gray4x3.pgm -define png:color-type=0 image/gray4x3.png
"$CONVERT" image/gray4x3.pgm -depth 16 -define png:bit-depth=16 -define png:color-type=0 image/gray16_4x3.png
"$CONVERT" image/rgb4x3.ppm -define png:color-type=2 image/rgb4x3.png
"$CONVERT" image/rgb4x3.ppm image/rgb4x3.gif
"$CONVERT" image/rgb4x3.ppm -alpha set -channel A -evaluate set 50% +channel image/rgba4x3.png
"$CONVERT" image/rgb4x3.ppm -quality 100 -sampling-factor 1x1 image/rgb4x3.jpg
rm image/gray4x3.pgm image/rgb4x3.ppm
# a real photograph (ImageMagick's built-in 70x46 "rose") as PNG and JPEG,
# plus ImageMagick's own triangle-filter downscale as a resize reference (text dump)
"$CONVERT" rose: image/rose.png
"$CONVERT" rose: -quality 90 image/rose.jpg
"$CONVERT" image/rose.png -filter Triangle -resize '35x23!' -depth 8 txt:- >image/rose_35x23_triangle.txt

# ---- IDX: the first 8 Fashion-MNIST training items, raw and gzip'd
$PY - "$FASHION" <<'EOF'
import gzip, sys, struct
src = sys.argv[1]
for name, itemsize in (("train-images-idx3-ubyte", 784), ("train-labels-idx1-ubyte", 1)):
    b = gzip.open(f"{src}/{name}.gz").read()
    nd = b[3]
    hdr = bytearray(b[:4 + 4 * nd])
    struct.pack_into(">I", hdr, 4, 8)
    out = bytes(hdr) + b[4 + 4 * nd: 4 + 4 * nd + 8 * itemsize]
    open(f"idx/{name[:5]}8-{name.split('-')[1]}.idx", "wb").write(out)
    with open(f"idx/{name[:5]}8-{name.split('-')[1]}.idx.gz", "wb") as f:
        f.write(gzip.compress(out, mtime=0))
EOF

# ---- audio: espeak-ng speech at 22.05 kHz, re-encoded by sox
espeak-ng -v en -s 160 -w audio/full.wav "seven"
sox -D audio/full.wav audio/speech22k.wav trim 0.05 0.4
rm audio/full.wav
sox -D audio/speech22k.wav -b 8 -e unsigned-integer audio/speech22k_u8.wav
sox -D audio/speech22k.wav -b 24 audio/speech22k_s24.wav
sox -D audio/speech22k.wav -b 32 -e signed-integer audio/speech22k_s32.wav
sox -D audio/speech22k.wav -b 32 -e floating-point audio/speech22k_f32.wav
sox -D -n -r 22050 -b 16 audio/sine440_22k.wav synth 0.4 sine 440 vol 0.5
sox -D -M audio/speech22k.wav audio/sine440_22k.wav audio/stereo22k.wav
sox -D audio/speech22k.wav -r 8000 audio/speech8k.wav
sox -D audio/speech8k.wav -e ima-adpcm audio/speech8k_adpcm.wav
# references for the resampler, computed by sox's own (very high quality) rate effect
sox -D audio/speech22k.wav -b 32 -e floating-point audio/ref_speech22k_to16k_sox.wav rate -v 16000
sox -D audio/speech8k.wav -b 32 -e floating-point audio/ref_speech8k_to16k_sox.wav rate -v 16000

# ---- video: 6 frames 16x16, grey background with a red 4x4 square moving diagonally
i=0
while [ $i -lt 6 ]; do
	x=$((2 * i)); y=$i
	"$CONVERT" -size 16x16 xc:'rgb(128,128,128)' -fill 'rgb(255,0,0)' \
		-draw "rectangle $x,$y $((x + 3)),$((y + 3))" -define png:color-type=2 "video/frames/frame_$(printf %03d $i).png"
	i=$((i + 1))
done
# optimised GIF: later frames are sub-rectangles, so decoding must composite them
"$CONVERT" -delay 10 video/frames/frame_*.png -layers Optimize video/anim.gif
ffmpeg -v error -y -framerate 10 -i video/frames/frame_%03d.png -c:v libx264 -pix_fmt yuv420p -crf 10 video/tiny.mp4

# ---- sensor: windows of real US macro data (statsmodels macrodata), rows = quarters
$PY - "$MACRODATA" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
chans = ["realgdp", "realcons", "realinv", "unemp", "infl"]
labels = []
for w in range(8):
    win = rows[w * 20: w * 20 + 16]
    nxt = rows[w * 20 + 16: w * 20 + 20]
    with open(f"sensor/macro_{w:02d}.csv", "w") as f:
        f.write("t," + ",".join(chans) + "\n")
        for r in win:
            t = int(r["year"]) + (int(r["quarter"]) - 1) / 4
            f.write(f"{t:.2f}," + ",".join(r[c] for c in chans) + "\n")
    # target: mean inflation over the following year; label: is it above 4 %
    infl = sum(float(r["infl"]) for r in nxt) / len(nxt)
    labels.append(("high" if infl > 4 else "low", infl))
open("sensor/labels.txt", "w").write("".join(f"{l},{v:.4f}\n" for l, v in labels))
# bad inputs
lines = open("sensor/macro_00.csv").read().splitlines()
bad = lines[:]; bad[5] = bad[5].replace(bad[5].split(",")[3], "NaN", 1)
open("sensor/bad_nan.csv", "w").write("\n".join(bad) + "\n")
bad = lines[:]; bad[7] = ",".join(bad[7].split(",")[:-1])
open("sensor/bad_ragged.csv", "w").write("\n".join(bad) + "\n")
EOF

# ---- text: a few sentences (WordNet-style glosses)
printf 'a domestic animal kept for companionship\n' >text/gloss0.txt
printf 'an instrument for measuring time\n' >text/gloss1.txt

# ---- manifests (paths relative to the manifest), CSV and JSONL with the same rows
$PY - <<'EOF'
import json
labels = [l.split(",") for l in open("sensor/labels.txt").read().split()]
imgs = ["rgb4x3.png", "rose.png", "gray4x3.png", "rgb4x3.jpg", "rose.jpg", "rgb4x3.gif", "rgba4x3.png", "gray16_4x3.png"]
auds = ["speech22k.wav", "speech8k.wav", "speech22k_s24.wav", "stereo22k.wav", "speech22k_f32.wav", "speech22k_u8.wav", "sine440_22k.wav", "speech22k_s32.wav"]
texts = ["GDP grew, jobs followed", "a quiet quarter", "inflation rose again", "the recession deepened",
         "recovery, slow but steady", "rates were cut", "unemployment fell", "a quiet year"]
rows = []
for i in range(8):
    rows.append({"id": f"q{i}", "image": f"../image/{imgs[i]}", "audio": f"../audio/{auds[i]}",
                 "text": texts[i], "sensor": f"../sensor/macro_{i:02d}.csv",
                 "label": labels[i][0], "target": float(labels[i][1]),
                 "vector": [float(labels[i][1]), float(i)]})
with open("manifest/macro.csv", "w") as f:
    f.write("id,image,audio,text,sensor,label,target,vector\n")
    for r in rows:
        f.write(f'{r["id"]},{r["image"]},{r["audio"]},"{r["text"]}",{r["sensor"]},{r["label"]},{r["target"]},"{r["vector"][0]} {r["vector"][1]}"\n')
with open("manifest/macro.jsonl", "w") as f:
    for r in rows:
        f.write(json.dumps(r) + "\n")
EOF
ls -la image audio video video/frames sensor idx manifest | head -80
du -sh .
