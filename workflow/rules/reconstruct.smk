rule reconstruct:
    input:
        frames=get_acquisition_frames,
        model=get_acquisition_model,
    output:
        super_resolution="results/reconstruct/{dataset}/{acquisition}/super_resolution.tif",
        super_resolution_png=report(
            "results/reconstruct/{dataset}/{acquisition}/super_resolution.png",
            caption="../report/super_resolution.rst",
            category="Reconstruction",
            subcategory="{dataset}",
            labels={"acquisition": "{acquisition}", "figure": "Deep-STORM image"},
        ),
        widefield="results/reconstruct/{dataset}/{acquisition}/widefield.tif",
        widefield_png=report(
            "results/reconstruct/{dataset}/{acquisition}/widefield.png",
            caption="../report/widefield.rst",
            category="Reconstruction",
            subcategory="{dataset}",
            labels={"acquisition": "{acquisition}", "figure": "widefield"},
        ),
        localizations="results/reconstruct/{dataset}/{acquisition}/localizations.csv",
        rendered="results/reconstruct/{dataset}/{acquisition}/rendered.tif",
        rendered_png=report(
            "results/reconstruct/{dataset}/{acquisition}/rendered.png",
            caption="../report/rendered.rst",
            category="Reconstruction",
            subcategory="{dataset}",
            labels={"acquisition": "{acquisition}", "figure": "localisations"},
        ),
        summary="results/reconstruct/{dataset}/{acquisition}/reconstruction.json",
    log:
        log_path("reconstruct"),
    benchmark:
        benchmark_path("reconstruct"),
    conda:
        "../../envs/reconstruct.yaml"
    threads: 4
    params:
        pixel_size_nm=get_pixel_size,
        options=get_reconstruction_options,
    script:
        "../../scripts/reconstruct.py"


rule save_predictions:
    input:
        frames=get_acquisition_frames,
        model=get_acquisition_model,
    output:
        predictions="results/reconstruct/{dataset}/{acquisition}/predictions.tif",
    log:
        log_path("save_predictions"),
    benchmark:
        benchmark_path("save_predictions"),
    conda:
        "../../envs/reconstruct.yaml"
    threads: 4
    params:
        pixel_size_nm=get_pixel_size,
        options=get_reconstruction_options,
    script:
        "../../scripts/save_predictions.py"
