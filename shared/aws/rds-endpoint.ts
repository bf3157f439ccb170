/** Where an RDS instance or cluster listens, as the RDS API reports it. */
export interface RdsEndpoint {
  /** Every host name that reaches this database (a cluster has a writer and a reader endpoint). */
  hosts: string[];
  port: number;
  engine: string;
}

/** Finds an RDS instance's or cluster's endpoint from its ARN. */
export type RdsEndpointResolver = (arn: string) => Promise<RdsEndpoint>;

/** The tags RDS puts on a master user secret it manages, lower-cased (RDS writes
 * aws:rds:primaryDBInstanceArn and aws:rds:primaryDBClusterArn; compare lower-cased keys). */
export const RDS_INSTANCE_TAG = 'aws:rds:primarydbinstancearn';
export const RDS_CLUSTER_TAG = 'aws:rds:primarydbclusterarn';

/**
 * Resolves through the RDS API (DescribeDBInstances / DescribeDBClusters, which accept the
 * ARN as identifier). The SDK client is loaded on first use only: most rotations never need it.
 *
 * @example
 * const endpoint = await rdsEndpointResolver()('arn:aws:rds:us-east-1:123456789012:db:orders');
 */
export function rdsEndpointResolver(): RdsEndpointResolver {
  const clients = new Map<string, import('@aws-sdk/client-rds').RDSClient>();
  return async (arn) => {
    const { RDSClient, DescribeDBClustersCommand, DescribeDBInstancesCommand } = await import(
      '@aws-sdk/client-rds'
    );
    const region = arn.split(':')[3] ?? '';
    let client = clients.get(region);
    if (client === undefined) {
      client = new RDSClient(region ? { region } : {});
      clients.set(region, client);
    }
    if (arn.split(':')[5] === 'cluster') {
      const output = await client.send(new DescribeDBClustersCommand({ DBClusterIdentifier: arn }));
      const cluster = output.DBClusters?.[0];
      if (!cluster?.Endpoint || cluster.Port === undefined || !cluster.Engine) {
        throw new Error(`RDS cluster ${arn} has no endpoint yet`);
      }
      return {
        hosts: [cluster.Endpoint, ...(cluster.ReaderEndpoint ? [cluster.ReaderEndpoint] : [])],
        port: cluster.Port,
        engine: cluster.Engine,
      };
    }
    const output = await client.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: arn }));
    const instance = output.DBInstances?.[0];
    if (!instance?.Endpoint?.Address || instance.Endpoint.Port === undefined || !instance.Engine) {
      throw new Error(`RDS instance ${arn} has no endpoint yet`);
    }
    return {
      hosts: [instance.Endpoint.Address],
      port: instance.Endpoint.Port,
      engine: instance.Engine,
    };
  };
}
