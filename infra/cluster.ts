/** The ECS cluster for the reader service and the on-demand tasks. */
export const cluster = (deps: { readonly vpc: sst.aws.Vpc }) => new sst.aws.Cluster("Cluster", { vpc: deps.vpc })
