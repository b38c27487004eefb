// The demo origin's files (see LICENSES.md beside this file). Included by src/demo/mod.rs.
[
    Sample {
        name: "coffee.jpg",
        mime: "image/jpeg",
        bytes: include_bytes!("coffee.jpg"),
        caption: "A cup of coffee, 600x400 photo",
    },
    Sample {
        name: "retina.jpg",
        mime: "image/jpeg",
        bytes: include_bytes!("retina.jpg"),
        caption: "A fundus photograph, 1411x1411 (2 MP) photo",
    },
    Sample {
        name: "rocket-exif.jpg",
        mime: "image/jpeg",
        bytes: include_bytes!("rocket-exif.jpg"),
        caption: "A rocket launch, stored sideways with EXIF orientation 6, GPS and a comment",
    },
    Sample {
        name: "chelsea-cutout.png",
        mime: "image/png",
        bytes: include_bytes!("chelsea-cutout.png"),
        caption: "A cat cut out with a soft transparent edge (PNG with alpha)",
    },
]
