use super::*;

#[test]
fn visible_tiles_cover_exactly_the_visible_rectangle() {
    let layout = PyramidLayout::new(ImageSize::new(5000, 3000));
    let keys = visible_tiles(&layout, 0, &ImageRect::new(500.0, 0.0, 1100.0, 600.0));
    let cols: Vec<(u32, u32)> = keys.iter().map(|k| (k.col, k.row)).collect();
    assert_eq!(cols, vec![(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)]);
    // At level 2 one tile spans 2048 original pixels.
    let keys = visible_tiles(&layout, 2, &ImageRect::new(0.0, 0.0, 5000.0, 3000.0));
    assert_eq!(keys.len(), 6);
}

#[test]
fn a_preview_wider_than_the_gpu_allows_is_shown_shrunk() {
    use crate::imagery::{PixelBudget, tiles::TileService};
    // 17,600 px wide: its eighth-scale preview (2,200 px) once stopped the app with a
    // panic in egui's headless context (2,048 px at most). The service now keeps previews
    // within 2,048; a back end that takes less gets the preview shrunk by the canvas.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wide.jpg");
    let img = RgbImage::from_fn(17_600, 64, |x, _| image::Rgb([(x / 70) as u8, 90, 160]));
    img.save(&path).unwrap();
    let size = ImageSize::new(17_600, 64);
    let id = ImageId::of_file(&path).unwrap();
    let tiles = TileService::new(&dir.path().join("cache"), 64 << 20, PixelBudget::DEFAULT, 1);
    tiles.open(&id, path, size);
    let started = std::time::Instant::now();
    while tiles.preview(&id).is_none() {
        assert!(started.elapsed().as_secs() < 60, "no preview came");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(tiles.preview(&id).unwrap().width(), 2048);
    let ctx = egui::Context::default();
    let mut canvas = Canvas::new();
    canvas.set_image(id, size);
    for _ in 0..2 {
        let input = egui::RawInput {
            max_texture_side: Some(1500),
            ..Default::default()
        };
        let mut out = ctx.run_ui(input, |ui| {
            egui::CentralPanel::no_frame().show(ui, |ui| canvas.show(ui, &tiles, &[]));
        });
        // No renderer here to apply the uploads.
        out.textures_delta.clear();
    }
    let shown = canvas.preview.as_ref().map(|t| t.size()).unwrap();
    assert_eq!(shown[0], 1500);
    assert!(shown[1] >= 1);
}
