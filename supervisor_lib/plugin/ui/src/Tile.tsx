// The Home page tile: spend today against yesterday, open anomalies and today's failed calls, with a link to the
// Supervisor page.
import { Box, Flex, Text } from "@chakra-ui/react";

import { useApi, useStamp } from "./api";
import { count, usd } from "./format";
import { AirflowLink } from "./parts";
import type { Tile as TileData } from "./types";

export function Tile() {
  const stamp = useStamp();
  const { data, error } = useApi<TileData>("tile", {}, stamp);
  const change = data && data.spend_yesterday_usd > 0 ? data.spend_today_usd / data.spend_yesterday_usd - 1 : null;
  return (
    <Box borderWidth="1px" borderColor="border" borderRadius="md" p={3} bg="bg.panel" data-testid="supervisor-tile">
      <Flex justify="space-between" align="baseline" gap={4} wrap="wrap">
        <Text fontWeight="semibold"><AirflowLink to="plugin/supervisor">Supervisor</AirflowLink></Text>
        {error ? <Text fontSize="xs" color="fg.error">analytics unavailable</Text> : null}
      </Flex>
      <Flex gap={6} mt={1} wrap="wrap">
        <Box>
          <Text fontSize="xs" color="fg.muted">Spend today</Text>
          <Text fontSize="lg" fontWeight="semibold" data-testid="tile-spend">{usd(data?.spend_today_usd)}</Text>
          <Text fontSize="xs" color="fg.muted">
            yesterday {usd(data?.spend_yesterday_usd)}{change !== null ? ` (${change >= 0 ? "+" : ""}${Math.round(change * 100)}%)` : ""}
          </Text>
        </Box>
        <Box>
          <Text fontSize="xs" color="fg.muted">Calls today</Text>
          <Text fontSize="lg" fontWeight="semibold">{count(data?.calls_today)}</Text>
        </Box>
        <Box>
          <Text fontSize="xs" color="fg.muted">Open anomalies (7 d)</Text>
          <Text fontSize="lg" fontWeight="semibold" color={data && data.open_anomalies > 0 ? "fg.error" : undefined} data-testid="tile-anomalies">
            {count(data?.open_anomalies)}
          </Text>
        </Box>
        <Box>
          <Text fontSize="xs" color="fg.muted">Failed today</Text>
          <Text fontSize="lg" fontWeight="semibold" color={data && data.errors_today > 0 ? "fg.error" : undefined} data-testid="tile-errors">
            {count(data?.errors_today)}
          </Text>
        </Box>
      </Flex>
    </Box>
  );
}
