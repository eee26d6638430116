rule simulate_training_set:
    input:
        table=get_structure_table,
        camera_maps=get_camera_maps,
        conditions=get_conditions,
    output:
        frames="results/simulate/{dataset}/density_{density}/frames.tif",
        ground_truth="results/simulate/{dataset}/density_{density}/ground_truth.csv",
        patches="results/simulate/{dataset}/density_{density}/patches.npz",
    log:
        log_path("simulate_training_set"),
    benchmark:
        benchmark_path("simulate_training_set"),
    conda:
        "../../envs/simulate.yaml"
    params:
        dataset=get_dataset,
        density=get_training_density,
    script:
        "../../scripts/simulate_training_set.py"


rule simulate_acquisition:
    input:
        table=get_structure_table,
        camera_maps=get_camera_maps,
        conditions=get_conditions,
    output:
        frames="results/simulate/{dataset}/{acquisition}/frames.tif",
        ground_truth="results/simulate/{dataset}/{acquisition}/ground_truth.csv",
        drift="results/simulate/{dataset}/{acquisition}/drift.csv",
    log:
        log_path("simulate_acquisition"),
    benchmark:
        benchmark_path("simulate_acquisition"),
    conda:
        "../../envs/simulate.yaml"
    params:
        dataset=get_dataset,
        acquisition=get_simulated_acquisition,
    script:
        "../../scripts/simulate_acquisition.py"
