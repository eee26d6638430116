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
        "results/logs/simulate/{dataset}_density_{density}.log",
    benchmark:
        "results/benchmarks/simulate/{dataset}_density_{density}.tsv"
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
    log:
        "results/logs/simulate/{dataset}_{acquisition}.log",
    benchmark:
        "results/benchmarks/simulate/{dataset}_{acquisition}.tsv"
    conda:
        "../../envs/simulate.yaml"
    params:
        dataset=get_dataset,
        acquisition=get_simulated_acquisition,
    script:
        "../../scripts/simulate_acquisition.py"
