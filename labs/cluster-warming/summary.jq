# What a snapshot holds, on one line: cluster names, each cluster's endpoint ports, routes.
{
  clusters: [.clusters[].name],
  endpoints: [.endpoints[] | {(.cluster_name): [.endpoints[]?.lb_endpoints[].endpoint.address.socket_address.port_value]}],
  routes: [.routes[].virtual_hosts[].routes[] | {(.match.prefix): .route.cluster}]
}
