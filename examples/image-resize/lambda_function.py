"""Makes a thumbnail, a medium and a full-size copy of every image dropped into a watched
directory. Triggered by a funcd file trigger: the event is S3-shaped, the image is readable
at /mnt/<trigger>/<key> and the results go to /mnt/<trigger>-out/<name>/."""
import os
import urllib.parse

from PIL import Image, ImageOps

# Longest side of each copy, in pixels; None keeps the original size.
SIZES = {"thumbnail": 160, "medium": 800, "full": None}


def lambda_handler(event, context):
    written = []
    for record in event["Records"]:
        trigger = record["s3"]["configurationId"]
        key = urllib.parse.unquote_plus(record["s3"]["object"]["key"])
        source = os.path.join("/mnt", trigger, key)
        out_dir = os.path.join("/mnt", trigger + "-out", os.path.splitext(key)[0])
        os.makedirs(out_dir, exist_ok=True)
        with Image.open(source) as original:
            # Phone pictures store their rotation in EXIF; apply it before resizing.
            image = ImageOps.exif_transpose(original).convert("RGB")
        for name, longest in SIZES.items():
            copy = image.copy()
            if longest:
                copy.thumbnail((longest, longest))
            target = os.path.join(out_dir, name + ".jpg")
            copy.save(target, "JPEG", quality=85)
            written.append({"file": target, "width": copy.width, "height": copy.height})
        print(f"resized {key}: {len(SIZES)} copies in {out_dir}")
    return {"written": written}
