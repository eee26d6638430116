rule reconstruct:
    input:
        frames=get_acquisition_frames,
        model=get_acquisition_model,
        conditions=get_conditions,
    output:
        super_resolution="results/reconstruct/{dataset}/{acquisition}/super_resolution.tif",
        super_resolution_uncorrected="results/reconstruct/{dataset}/{acquisition}/super_resolution_uncorrected.tif",
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
        localizations_uncorrected="results/reconstruct/{dataset}/{acquisition}/localizations_uncorrected.csv",
        drift="results/reconstruct/{dataset}/{acquisition}/drift.csv",
        drift_png=report(
            "results/reconstruct/{dataset}/{acquisition}/drift.png",
            caption="../report/drift.rst",
            category="Reconstruction",
            subcategory="{dataset}",
            labels={"acquisition": "{acquisition}", "figure": "drift"},
        ),
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
        dataset=get_dataset,
    script:
        "../../scripts/reconstruct.py"


rule export_picasso:
    input:
        localizations="results/reconstruct/{dataset}/{acquisition}/localizations.csv",
        reconstruction="results/reconstruct/{dataset}/{acquisition}/reconstruction.json",
    output:
        hdf5="results/reconstruct/{dataset}/{acquisition}/localizations.hdf5",
        yaml="results/reconstruct/{dataset}/{acquisition}/localizations.yaml",
    log:
        log_path("export_picasso"),
    benchmark:
        benchmark_path("export_picasso"),
    conda:
        "../../envs/reconstruct.yaml"
    script:
        "../../scripts/export_picasso.py"


rule group_localizations:
    input:
        localizations="results/reconstruct/{dataset}/{acquisition}/localizations.csv",
    output:
        grouped="results/reconstruct/{dataset}/{acquisition}/localizations_grouped.csv",
    log:
        log_path("group_localizations"),
    benchmark:
        benchmark_path("group_localizations"),
    conda:
        "../../envs/reconstruct.yaml"
    params:
        grouping=get_grouping,
    script:
        "../../scripts/group_localizations.py"


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
