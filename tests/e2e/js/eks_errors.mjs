// Calls EKS with the AWS SDK for JavaScript v3 once per case and reports, as one JSON line per
// case, how the SDK classified the error: its name, HTTP status, and whether it is an instance
// of the client's exception classes. The pytest (test_js_sdk_errors.py) decides what is right.
//
// Input (argv[2], JSON): {"endpoint": url, "region": r, "cases": [{"id", "accessKeyId",
// "secretAccessKey", "cluster"}]}; each case calls DescribeCluster on `cluster`.
import * as eks from "@aws-sdk/client-eks";

const input = JSON.parse(process.argv[2]);

async function run(c) {
  const client = new eks.EKSClient({
    endpoint: input.endpoint,
    region: input.region,
    credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey },
    maxAttempts: 1,
  });
  try {
    await client.send(new eks.DescribeClusterCommand({ name: c.cluster }));
    return { id: c.id, ok: true };
  } catch (e) {
    const modeled = Object.entries(eks)
      .filter(([n, v]) => typeof v === "function" && n.endsWith("Exception") && n !== "EKSServiceException" && e instanceof v)
      .map(([n]) => n);
    return {
      id: c.id,
      ok: false,
      name: e.name,
      status: e.$metadata?.httpStatusCode ?? null,
      fault: e.$fault ?? null,
      message: e.message,
      serviceException: e instanceof eks.EKSServiceException,
      instanceOf: modeled,
    };
  } finally {
    client.destroy();
  }
}

for (const c of input.cases) {
  process.stdout.write(JSON.stringify(await run(c)) + "\n");
}
